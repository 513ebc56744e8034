#!/bin/bash
# Builds a variant of Fast's eBPF programs, for benchmarks that compare it with the committed
# objects in the same run (bench/prog-cost.ts --obj DIR/fast_pod.o; an agent or a lab started
# with FAST_BPF_DIR=DIR). Prints DIR, a copy of bpf/ with bench/variants/NAME.patch applied
# and both objects built. The variants are experiments, measured in docs/benchmarks.md;
# none of them is meant to ship.
#
#   dir=$(bash bench/variants/build.sh nowrite)
set -euo pipefail
name=${1:?usage: build.sh VARIANT   (one of: $(cd "$(dirname "$0")" && ls *.patch | sed 's/\.patch$//' | tr '\n' ' '))}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
patch_file="$here/$name.patch"
[ -f "$patch_file" ] || { echo "no variant $name ($patch_file)" >&2; exit 2; }
dir=${TMPDIR:-/tmp}/fast-variant-$name
rm -rf "$dir"
mkdir -p "$dir/bpf"
cp "$repo"/bpf/*.c "$repo"/bpf/*.h "$repo"/bpf/Makefile "$dir/bpf/"
(cd "$dir" && patch -s -p0 < "$patch_file")
# Variants may leave a helper of the committed code unused.
make -s -C "$dir/bpf" EXTRA_CFLAGS=-Wno-unused-function >&2
echo "$dir/bpf"
