#!/usr/bin/env bash
# Fails when tests left namespaces, Fast processes or bpffs mounts behind.
set -u
bad=0
ns=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^(fnode|fpod|fbpf|flab|fast)' || true)
[ -n "$ns" ] && { echo "leftover namespaces: $ns"; bad=1; }
procs=$(pgrep -af 'dist/src/(agent|lab|controller-manager)' | grep -v pgrep || true)
[ -n "$procs" ] && { echo "leftover processes: $procs"; bad=1; }
mounts=$(grep -E ' bpf ' /proc/mounts | grep -E 'fast' || true)
[ -n "$mounts" ] && { echo "leftover bpffs mounts: $mounts"; bad=1; }
[ $bad -eq 0 ] && echo "==> no debris left"
exit $bad
