#!/usr/bin/env bash
# npm run demo: boots a throw-away Debian test host with systemd and runs
# boxctl's whole prescribed workflow in it, narrating each step.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ $(id -u) != 0 ]]; then
  echo "npm run demo: boots a systemd test host with systemd-nspawn, which needs root; run it as root." >&2
  exit 1
fi
npm run --silent build
npm run --silent deb >/dev/null   # the test hosts install the .deb
bash test/host/cache.sh
exec node --import tsx test/host/demo.ts "$@"
