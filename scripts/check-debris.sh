#!/usr/bin/env bash
# Fails when tests left namespaces, Fast processes, bpffs mounts, pins in the global bpffs
# or BPF links of Fast's programs (tcx links are pinned: one whose pin survived keeps its
# program attached) behind.
set -u
bad=0
ns=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^(fnode|fpod|fbpf|flab|fast)' || true)
[ -n "$ns" ] && { echo "leftover namespaces: $ns"; bad=1; }
procs=$(pgrep -af 'dist/src/(agent|lab|controller-manager)' | grep -v pgrep || true)
[ -n "$procs" ] && { echo "leftover processes: $procs"; bad=1; }
mounts=$(grep -E ' bpf ' /proc/mounts | grep -E 'fast' || true)
[ -n "$mounts" ] && { echo "leftover bpffs mounts: $mounts"; bad=1; }
pins=$(find /sys/fs/bpf -maxdepth 3 \( -name 'fast*' -o -name 'tcx_*' \) 2>/dev/null || true)
[ -n "$pins" ] && { echo "leftover pins in /sys/fs/bpf: $pins"; bad=1; }
if command -v bpftool >/dev/null; then
  links=$(python3 - <<'PY'
import json, subprocess
def j(*a):
    r = subprocess.run(['bpftool', '-j', *a], capture_output=True, text=True)
    return json.loads(r.stdout or '[]') if r.returncode == 0 else []
names = {p['id']: p.get('name', '') for p in j('prog', 'show')}
print(' '.join(f"link {l['id']} ({names.get(l.get('prog_id'))})" for l in j('link', 'show') if names.get(l.get('prog_id'), '').startswith('fast_')))
PY
)
  [ -n "$links" ] && { echo "leftover BPF links of Fast programs: $links"; bad=1; }
fi
[ $bad -eq 0 ] && echo "==> no debris left"
exit $bad
