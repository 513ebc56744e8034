#!/usr/bin/env bash
# The README's first command: set everything up, bring a 2-node lab up and run the
# seed's quick start in it (Ips pools, Deployments, pods pinging on one node and across).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if node bin/fast lab status >/dev/null 2>&1; then
  echo "==> a lab is already up; taking it down first"
  node bin/fast lab down
fi
node bin/fast lab up --nodes "${FAST_LAB_NODES:-2}"
node bin/fast lab quickstart
echo
node bin/fast lab status
cat <<TXT

The lab stays up for you to explore:
  export KUBECONFIG=/run/fast-lab/kubeconfig
  kubectl get pods -o wide; kubectl get ips; kubectl get ipendpoints
  nsenter --net=/var/run/netns/flab-node1 node bin/fast-ctl --config /run/fast-lab/node1/agent.json endpoint list
  node bin/fast lab exec POD -- ping -c1 ADDRESS
  node bin/fast lab down          # removes everything
(The single-node demo without Kubernetes: bash scripts/node-demo.sh)
TXT
