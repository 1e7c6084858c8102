#!/usr/bin/env bash
# test.sh is `make test`: PostgreSQL and Redis on their own ports and data
# folder (so it runs beside `make run`), stripe-mock (Stripe's official API
# mock, built once with `go install`) on its own port, then the whole suite
# with the race detector. The services it starts are stopped when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_port=${PAYMENTS_TEST_PG_PORT:-25432}
redis_port=${PAYMENTS_TEST_REDIS_PORT:-26379}
stripe_mock_port=${PAYMENTS_TEST_STRIPE_MOCK_PORT:-22111}
stripe_mock_version=v0.203.0
stripe_mock_dir=.dev/stripe-mock/$stripe_mock_version
dir=.dev/test

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ ! -x "$stripe_mock_dir/stripe-mock" ]]; then
  echo "building stripe-mock $stripe_mock_version into $stripe_mock_dir (once)"
  GOBIN="$PWD/$stripe_mock_dir" go install "github.com/stripe/stripe-mock@$stripe_mock_version"
fi
if port_open "$stripe_mock_port"; then
  echo "port $stripe_mock_port is taken; set PAYMENTS_TEST_STRIPE_MOCK_PORT to a free port for stripe-mock" >&2
  exit 1
fi

scripts/services.sh up "$dir" "$pg_port" "$redis_port"
stripe_mock_pid=
cleanup() {
  if [[ -n "$stripe_mock_pid" ]]; then kill "$stripe_mock_pid" 2>/dev/null || true; fi
  scripts/services.sh down "$dir" "$pg_port" "$redis_port"
}
trap cleanup EXIT

# -https-addr with no port: stripe-mock also serves HTTPS, by default on
# :12112, which a second run beside this one would find taken.
"$stripe_mock_dir/stripe-mock" -http-addr "127.0.0.1:$stripe_mock_port" -https-addr "127.0.0.1:" >"$dir/stripe-mock.log" 2>&1 &
stripe_mock_pid=$!
for _ in $(seq 1 100); do
  port_open "$stripe_mock_port" && break
  if ! kill -0 "$stripe_mock_pid" 2>/dev/null; then
    echo "stripe-mock did not start:" >&2
    cat "$dir/stripe-mock.log" >&2
    exit 1
  fi
  sleep 0.1
done
port_open "$stripe_mock_port" || { echo "stripe-mock is not answering on port $stripe_mock_port" >&2; exit 1; }

export PAYMENTS_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:${pg_port}/postgres?sslmode=disable"
export PAYMENTS_TEST_REDIS_URL="redis://127.0.0.1:${redis_port}/0"
export PAYMENTS_TEST_STRIPE_MOCK_URL="http://127.0.0.1:${stripe_mock_port}"

# Databases left by an interrupted run.
psql "$PAYMENTS_TEST_DATABASE_URL" -tAc \
  "SELECT datname FROM pg_database WHERE datname LIKE 'payments_test_%' OR datname LIKE 'payments_build_%'" |
  while read -r db; do [[ -n "$db" ]] && psql "$PAYMENTS_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; done

if [[ "${1:-}" == bench ]]; then
  # Benchmarks run without the race detector, which would distort them.
  go test -run '^$' -bench . -benchtime "${BENCHTIME:-5s}" -timeout 20m ./...
  exit 0
fi
scripts/chart-check.sh
# The contract: fresh spec and SDKs, linters, breaking changes (spec-check.sh).
scripts/spec-check.sh
# The docs page's headless browser test (cmd/payments) needs chromium.
PAYMENTS_TEST_CHROMIUM=$(scripts/tools.sh chromium)
export PAYMENTS_TEST_CHROMIUM
go vet ./...
go test -race -count=1 -timeout 12m ${GOTESTFLAGS:-} ./...
# Both SDKs end to end against a live server.
scripts/sdk-e2e.sh
