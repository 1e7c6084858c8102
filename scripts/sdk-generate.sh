#!/usr/bin/env bash
# sdk-generate.sh [ROOT] regenerates both SDKs' generated layers from the
# committed OpenAPI documents: sdk/go/api.gen.go (oapi-codegen, from the
# 3.0 document, which it reads) and sdk/typescript/src/schema.gen.ts
# (openapi-typescript, from the 3.1 document). With ROOT, the files are
# written under ROOT instead of the work tree (the freshness gate compares
# them with the committed ones).
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-$PWD}
oapi_codegen=$(scripts/tools.sh oapi-codegen)
scripts/npm-ci.sh sdk/typescript >/dev/null
mkdir -p "$root/sdk/go" "$root/sdk/typescript/src"
# oapi-codegen writes where its configuration says: a copy names ROOT's file.
cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT
sed "s|^output: .*|output: $root/sdk/go/api.gen.go|" sdk/go/oapi-codegen.yaml >"$cfg"
(cd sdk/go && "$oapi_codegen" -config "$cfg" ../../api/openapi-3.0.json)
(cd sdk/typescript && node_modules/.bin/openapi-typescript ../../api/openapi.json --output "$root/sdk/typescript/src/schema.gen.ts" >/dev/null 2>&1) ||
  { echo "openapi-typescript failed" >&2; exit 1; }
