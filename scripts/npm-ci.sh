#!/usr/bin/env bash
# npm-ci.sh DIR installs DIR's package-lock.json exactly (npm ci) into a
# cache folder under .dev/npm named by the lock's hash, links DIR/node_modules
# to it, and prints the cache folder. A second run with the same lock
# installs nothing. Install scripts never run (DIR/.npmrc: ignore-scripts).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: scripts/npm-ci.sh DIR}
[[ -f "$dir/package-lock.json" ]] || { echo "$dir/package-lock.json is missing" >&2; exit 1; }
hash=$(cat "$dir/package.json" "$dir/package-lock.json" "$dir/.npmrc" 2>/dev/null | sha256sum | cut -c1-16)
cache=.dev/npm/$(basename "$dir")-$hash
if [[ ! -f "$cache/.installed" ]]; then
  rm -rf "$cache" && mkdir -p "$cache"
  cp "$dir/package.json" "$dir/package-lock.json" "$cache/"
  [[ -f "$dir/.npmrc" ]] && cp "$dir/.npmrc" "$cache/"
  echo "npm ci $dir into $cache (once per lock)" >&2
  (cd "$cache" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
  touch "$cache/.installed"
fi
ln -sfn "$PWD/$cache/node_modules" "$dir/node_modules"
echo "$PWD/$cache"
