#!/usr/bin/env bash
# The README's first command: set everything up, bring the lab up and run the quick start.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec bash scripts/node-demo.sh
