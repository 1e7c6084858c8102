#!/usr/bin/env bash
# spec-check.sh is the contract's gate in `make test`:
#   1. the committed OpenAPI documents and both SDKs' generated layers are
#      what the code generates now (no diff);
#   2. the committed Redoc bundle of /docs equals the package that
#      api/docsui/package-lock.json pins;
#   3. Spectral and Redocly (pinned in tools/openapi/package-lock.json)
#      report 0 errors on both documents;
#   4. oasdiff v1.37 finds no breaking change from the released document
#      (api/released/openapi-v1.json) but those listed in
#      api/released/breaking-changes-accepted.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
stale() { echo "spec-check: $1 is stale: run \`make generate\` and commit the result" >&2; diff -u "$1" "$2" | head -20 >&2 || true; fail=1; }

# 1. Freshness.
go run ./cmd/payments openapi --version 3.1 >"$tmp/openapi.json"
go run ./cmd/payments openapi --version 3.0 >"$tmp/openapi-3.0.json"
cmp -s "$tmp/openapi.json" api/openapi.json || stale api/openapi.json "$tmp/openapi.json"
cmp -s "$tmp/openapi-3.0.json" api/openapi-3.0.json || stale api/openapi-3.0.json "$tmp/openapi-3.0.json"
scripts/sdk-generate.sh "$tmp/gen"
for f in sdk/go/api.gen.go sdk/typescript/src/schema.gen.ts; do
  cmp -s "$tmp/gen/$f" "$f" || stale "$f" "$tmp/gen/$f"
done
[[ $fail -eq 0 ]] && echo "spec-check: the OpenAPI documents and both SDKs are fresh"

# 2. The docs bundle.
scripts/npm-ci.sh api/docsui >/dev/null
for f in redoc.standalone.js redoc.standalone.js.LICENSE.txt; do
  if ! cmp -s "api/docsui/$f" "api/docsui/node_modules/redoc/bundles/$f"; then
    echo "spec-check: api/docsui/$f differs from the redoc package of api/docsui/package-lock.json: cp api/docsui/node_modules/redoc/bundles/$f api/docsui/" >&2
    fail=1
  fi
done
echo "spec-check: api/docsui/redoc.standalone.js is redoc@$(node -p 'require("./api/docsui/node_modules/redoc/package.json").version') of the lock"

# 3. Linters.
scripts/npm-ci.sh tools/openapi >/dev/null
bin=tools/openapi/node_modules/.bin
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
for doc in api/openapi.json api/openapi-3.0.json; do
  if ! out=$("$bin/spectral" lint --ruleset tools/openapi/spectral.yaml --fail-severity error --format text "$doc" 2>&1); then
    echo "spec-check: Spectral reports errors on $doc:" >&2
    echo "$out" >&2
    fail=1
  fi
  echo "spectral $doc: $(echo "$out" | grep -E 'problems|No results' | tail -n 1)"
  if ! out=$("$bin/redocly" lint --config tools/openapi/redocly.yaml --format stylish "$doc" 2>&1); then
    echo "spec-check: Redocly reports errors on $doc:" >&2
    echo "$out" >&2
    fail=1
  fi
  echo "redocly $doc: $(echo "$out" | grep -E '^ *[0-9]+:[0-9]+ +(error|warning) |Woohoo|Validation failed' | sed 's/^ *//' | tr '\n' ' ')"
done

# 4. Breaking changes.
oasdiff=$(scripts/tools.sh oasdiff)
if ! "$oasdiff" breaking api/released/openapi-v1.json api/openapi.json \
  --err-ignore api/released/breaking-changes-accepted.txt --fail-on ERR --format text; then
  echo "spec-check: oasdiff finds breaking changes from api/released/openapi-v1.json that api/released/breaking-changes-accepted.txt does not list" >&2
  fail=1
fi

exit "$fail"
