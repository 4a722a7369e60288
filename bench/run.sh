#!/usr/bin/env bash
# npm run bench: every benchmark, each printing ratios against a baseline
# measured in the same run. The system benchmarks boot test hosts (root).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build
npm run --silent deb >/dev/null   # the test hosts install the .deb
bash test/host/cache.sh
for b in bench/*.bench.ts; do
  echo "== $b"
  node --import tsx "$b"
done
