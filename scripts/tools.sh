#!/usr/bin/env bash
# tools.sh NAME prints the path of a pinned tool of the contract gates,
# installing it once under .dev/tools (Go tools, with go install at the
# pinned version) or with apt-get (Debian's chromium, as services.sh does
# for PostgreSQL and Redis). npm tools are pinned by their folder's
# package-lock.json and installed by scripts/npm-ci.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

oapi_codegen_version=v2.8.2
oasdiff_version=v1.37.0

go_tool() { # go_tool NAME MODULE/CMD VERSION
  local dir=.dev/tools/$1-$3
  if [[ ! -x "$dir/$1" ]]; then
    echo "installing $1 $3 into $dir (once)" >&2
    GOBIN="$PWD/$dir" go install "$2@$3" >&2
  fi
  echo "$PWD/$dir/$1"
}

case "${1:-}" in
  oapi-codegen) go_tool oapi-codegen github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen "$oapi_codegen_version" ;;
  oasdiff) go_tool oasdiff github.com/oasdiff/oasdiff "$oasdiff_version" ;;
  chromium)
    if ! command -v chromium >/dev/null 2>&1; then
      if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "installing chromium with apt-get (once)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq chromium >/dev/null
      else
        echo "chromium is missing: install it (Debian/Ubuntu: sudo apt-get install chromium) and run again" >&2
        exit 1
      fi
    fi
    command -v chromium
    ;;
  *) echo "usage: scripts/tools.sh oapi-codegen|oasdiff|chromium" >&2; exit 2 ;;
esac
