#!/usr/bin/env bash
# k6-check.sh type-checks the k6 scripts in loadtest/k6 with the pinned
# TypeScript and @types/k6. npm ci runs only when package-lock.json changed
# since the last install, so a warm run is tsc alone.
set -euo pipefail
cd "$(dirname "$0")/../loadtest/k6"

stamp=node_modules/.payments-lock-cksum
if [[ "$(cat "$stamp" 2>/dev/null)" != "$(cksum <package-lock.json)" ]]; then
  echo "k6-check: npm ci (once per package-lock.json)"
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  cksum <package-lock.json >"$stamp"
fi
echo "k6-check: tsc --noEmit"
node_modules/.bin/tsc --noEmit -p .
