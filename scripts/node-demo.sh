#!/usr/bin/env bash
# Single-node demo: one node namespace with fast-agent, three pods added through the
# real fast-cni, every pod pings every other pod and the node. Removes everything at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
id=fastdemo
dir=$(mktemp -d /tmp/fast-demo.XXXX)
node_ns=fnode-$id
cleanup() {
  [ -n "${agent_pid:-}" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  for i in 1 2 3; do ip netns del "fpod-$id-$i" 2>/dev/null || true; done
  ip netns del "$node_ns" 2>/dev/null || true
  umount "$dir/bpffs" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "node namespace $node_ns (address 192.168.90.1)"
ip netns add "$node_ns"
ip -n "$node_ns" link set lo up
ip -n "$node_ns" addr add 192.168.90.1/32 dev lo
ip netns exec "$node_ns" sysctl -qw net.ipv4.ip_forward=1
cat > "$dir/agent.json" <<JSON
{"nodeName":"demo-node","socketPath":"$dir/agent.sock","stateDir":"$dir/state","bpffsDir":"$dir/bpffs",
 "pendingDeleteDir":"$dir/state/pending-del","mtu":1500,
 "pools":[{"name":"default-ips","subnet":"10.244.0.1/16","ips":["10.244.0.10-10.244.0.200"]}]}
JSON

step "fast-agent (standalone mode, pool default-ips 10.244.0.10-10.244.0.200)"
nsenter --net=/var/run/netns/$node_ns -- node dist/src/agent/main.js --config "$dir/agent.json" 2>"$dir/agent.log" &
agent_pid=$!
for _ in $(seq 100); do [ -f "$dir/state/ready" ] && break; sleep 0.1; done
[ -f "$dir/state/ready" ] || { cat "$dir/agent.log"; exit 1; }
echo "agent ready (pid $agent_pid)"

conf='{"cniVersion":"1.1.0","name":"fast-demo","type":"fast","agentSocket":"'"$dir"'/agent.sock"}'
declare -a ips
for i in 1 2 3; do
  step "pod $i: ADD through fast-cni"
  ip netns add "fpod-$id-$i"
  out=$(echo "$conf" | nsenter --net=/var/run/netns/$node_ns -- env CNI_COMMAND=ADD CNI_CONTAINERID="demo-$i" \
        CNI_NETNS="/var/run/netns/fpod-$id-$i" CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
        CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-$i" ./cni/fast-cni)
  echo "$out"
  ips[$i]=$(echo "$out" | sed -E 's/.*"address":"([0-9.]+)\/32".*/\1/')
done

step "fast-ctl endpoint list"
nsenter --net=/var/run/netns/$node_ns -- node dist/src/ctl/main.js --config "$dir/agent.json" endpoint list

step "pods ping each other and the node pings each pod"
for i in 1 2 3; do for j in 1 2 3; do
  [ "$i" = "$j" ] && continue
  ip netns exec "fpod-$id-$i" ping -c1 -W1 "${ips[$j]}" >/dev/null && echo "pod-$i -> pod-$j (${ips[$j]}): ok" || { echo "pod-$i -> pod-$j: FAILED"; exit 1; }
done; done
for i in 1 2 3; do
  ip netns exec "$node_ns" ping -c1 -W1 "${ips[$i]}" >/dev/null && echo "node -> pod-$i: ok" || { echo "node -> pod-$i: FAILED"; exit 1; }
done

step "datapath counters (same-node packets never touched the host stack)"
nsenter --net=/var/run/netns/$node_ns -- node dist/src/ctl/main.js --config "$dir/agent.json" map dump fast_stats_v1

step "DEL the pods"
for i in 1 2 3; do
  echo "$conf" | nsenter --net=/var/run/netns/$node_ns -- env CNI_COMMAND=DEL CNI_CONTAINERID="demo-$i" \
    CNI_NETNS="/var/run/netns/fpod-$id-$i" CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni ./cni/fast-cni && echo "pod-$i deleted"
done
echo; echo "demo finished; everything it created is being removed"
