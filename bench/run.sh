#!/usr/bin/env bash
# npm run bench: every benchmark, each printing ratios against a baseline
# measured in the same run. The system benchmarks boot test hosts (root).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build
bash test/host/cache.sh
for b in bench/*.bench.ts; do
  echo "== $b"
  node --import tsx "$b"
done
