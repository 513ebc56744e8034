#!/usr/bin/env bash
# Installs what Fast needs on a fresh Debian 12 machine (as root) and builds it.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
want() { dpkg -s "$1" >/dev/null 2>&1 || need_pkgs+=("$1"); }
want iproute2          # ip, tc, nsenter comes with util-linux
want libbpf1           # the eBPF loader Fast calls through koffi
want iputils-ping      # tests and the demo ping between pods
want iptables          # portmap chaining test, masquerade
want nftables
want ethtool           # the lab turns GRO on for its underlay links, as on a real NIC
want openssl           # a throwaway TLS certificate in the API client's https test
want bpftool           # scripts/check-debris.sh looks for leftover BPF links of Fast
want procps            # pgrep in scripts/check-debris.sh
want containernetworking-plugins  # reference plugins: portmap chaining, benchmarks
want build-essential   # gcc for the static fast-cni forwarder
want clang             # proves the committed eBPF objects match their sources
want llvm
want libbpf-dev        # bpf_helpers.h for that check
want iperf3            # benchmarks
want sockperf
want hyperfine
want patch             # bench/variants/build.sh (program variants under study)
command -v kubectl >/dev/null 2>&1 || want kubernetes-client

if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "==> building (TypeScript, fast-cni)"
npx tsc -p tsconfig.json
make -s -C cni
