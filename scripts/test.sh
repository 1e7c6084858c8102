#!/usr/bin/env bash
# test.sh is `make test`: PostgreSQL and Redis on their own ports and data
# folder (so it runs beside `make run`), stripe-mock (Stripe's official API
# mock, built once with `go install`) on its own port, then the whole suite
# with the race detector. The services it starts are stopped when it ends.
#
# Each checkout has its own ports, derived from its path, and its own data
# under .dev/test, so two checkouts can run `make test` at once on one
# machine. PAYMENTS_TEST_PG_PORT, PAYMENTS_TEST_REDIS_PORT and
# PAYMENTS_TEST_STRIPE_MOCK_PORT override the derived ports.
set -euo pipefail
cd "$(dirname "$0")/.."

# Three consecutive ports from 20000 to 31999, below Linux's ephemeral range
# (32768 and up) so that no outgoing connection holds them: 4000 slots, so
# two checkouts share a slot with a chance of 1 in 4000, and then the
# checks below say so rather than share services.
slot=$(( $(printf '%s' "$(pwd -P)" | cksum | cut -d' ' -f1) % 4000 ))
port_base=$(( 20000 + slot * 3 ))
pg_port=${PAYMENTS_TEST_PG_PORT:-$port_base}
redis_port=${PAYMENTS_TEST_REDIS_PORT:-$((port_base + 1))}
stripe_mock_port=${PAYMENTS_TEST_STRIPE_MOCK_PORT:-$((port_base + 2))}
echo "test: PostgreSQL on $pg_port, Redis on $redis_port, stripe-mock on $stripe_mock_port (data in .dev/test)"
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

# stripe-mock also serves HTTPS, on port 12112 for every checkout unless
# told otherwise, and exits when that port is taken: give it a free one.
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

if [[ "${1:-}" == fuzz ]]; then
  # Every fuzz target of the tree, each for FUZZTIME. `make test` runs their
  # seed corpora (and the inputs they once failed on, kept under
  # testdata/fuzz) as ordinary tests; this looks for new inputs.
  fuzztime=${FUZZTIME:-30s}
  failed=()
  while read -r pkg target; do
    echo "== $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -parallel "${FUZZPARALLEL:-2}" "$pkg" || failed+=("$pkg $target")
  done < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '^./.dev/' | sort | while read -r file; do
    pkg=./$(dirname "${file#./}")
    for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
      echo "$pkg $target"
    done
  done)
  if ((${#failed[@]})); then
    printf 'fuzz target failed: %s\n' "${failed[@]}" >&2
    exit 1
  fi
  exit 0
fi
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
