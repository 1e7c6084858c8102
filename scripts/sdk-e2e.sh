#!/usr/bin/env bash
# sdk-e2e.sh runs both SDKs' tests end to end against a live server: it
# builds the binary, migrates a fresh database on the test PostgreSQL
# (PAYMENTS_TEST_DATABASE_URL) and serves it with the test Redis on a free
# loopback port, with webhooks allowed to loopback receivers (the tests'
# own). Then `go test` in sdk/go and tsc --strict plus node's test runner
# in sdk/typescript. The server and its database are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PAYMENTS_TEST_DATABASE_URL:?set by scripts/test.sh}"
: "${PAYMENTS_TEST_REDIS_URL:?set by scripts/test.sh}"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

dir=.dev/test/sdk-e2e
mkdir -p "$dir"
db=payments_test_sdk_$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
dsn=${PAYMENTS_TEST_DATABASE_URL/\/postgres\?/\/$db?}
psql "$PAYMENTS_TEST_DATABASE_URL" -qc "CREATE DATABASE $db" >/dev/null
server_pid=
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  psql "$PAYMENTS_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
}
trap cleanup EXIT

port=
for _ in $(seq 1 50); do
  p=$((20000 + RANDOM % 20000))
  if ! port_open "$p"; then port=$p; break; fi
done
[[ -n "$port" ]] || { echo "sdk-e2e: no free port" >&2; exit 1; }

go build -o "$dir/payments" ./cmd/payments
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export DATABASE_URL=$dsn REDIS_URL=$PAYMENTS_TEST_REDIS_URL
export PAYMENTS_REDIS_PREFIX="sdk-e2e-$db:" PAYMENTS_ADMIN_TOKEN=$token PAYMENTS_HTTP_ADDR=127.0.0.1:$port
export PAYMENTS_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export PAYMENTS_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true PAYMENTS_WEBHOOK_POLL_INTERVAL_MS=100
"$dir/payments" migrate up >"$dir/migrate.log" 2>&1 || { cat "$dir/migrate.log" >&2; exit 1; }
"$dir/payments" serve >"$dir/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { echo "sdk-e2e: the server did not start:" >&2; cat "$dir/serve.log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { echo "sdk-e2e: the server is not answering" >&2; exit 1; }

export PAYMENTS_SDK_BASE_URL=http://127.0.0.1:$port PAYMENTS_SDK_ADMIN_TOKEN=$token PAYMENTS_SDK_E2E_REQUIRED=1
unset DATABASE_URL REDIS_URL PAYMENTS_ADMIN_TOKEN PAYMENTS_ENCRYPTION_KEY

echo "sdk-e2e: Go SDK (sdk/go) against $PAYMENTS_SDK_BASE_URL"
(cd sdk/go && go vet ./... && go test -race -count=1 -v ./...)

echo "sdk-e2e: TypeScript SDK (sdk/typescript) against $PAYMENTS_SDK_BASE_URL"
scripts/npm-ci.sh sdk/typescript >/dev/null
(cd sdk/typescript && rm -rf dist && node_modules/.bin/tsc -p tsconfig.json && node --test --test-reporter=spec dist/test/*.test.js)
echo "sdk-e2e: both SDKs passed end to end"
