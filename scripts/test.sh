#!/usr/bin/env bash
# Runs the whole test suite: unit tests, eBPF tests, integration and end-to-end tests
# (these need root: they build their own network namespaces and remove them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

unit=(test/unit/*.test.ts)
integration=(test/integration/*.test.ts)
e2e=()
[ -d test/e2e ] && e2e=(test/e2e/*.test.ts)

echo "==> unit tests (${#unit[@]} files)"
node --import tsx --test --test-reporter=spec "${unit[@]}"
echo "==> integration tests (${#integration[@]} files)"
node --import tsx --test --test-reporter=spec --test-concurrency=1 "${integration[@]}"
if [ ${#e2e[@]} -gt 0 ]; then
  echo "==> end-to-end tests (${#e2e[@]} files)"
  node --import tsx --test --test-reporter=spec --test-concurrency=1 "${e2e[@]}"
fi
bash scripts/check-debris.sh
