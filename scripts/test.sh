#!/usr/bin/env bash
# test.sh is `make test`: PostgreSQL and Redis on their own ports and data
# folder (so it runs beside `make run`), then the whole suite with the race
# detector. The services it starts are stopped when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_port=${PAYMENTS_TEST_PG_PORT:-25432}
redis_port=${PAYMENTS_TEST_REDIS_PORT:-26379}
dir=.dev/test

scripts/services.sh up "$dir" "$pg_port" "$redis_port"
trap 'scripts/services.sh down "$dir" "$pg_port" "$redis_port"' EXIT

export PAYMENTS_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:${pg_port}/postgres?sslmode=disable"
export PAYMENTS_TEST_REDIS_URL="redis://127.0.0.1:${redis_port}/0"

# Databases left by an interrupted run.
psql "$PAYMENTS_TEST_DATABASE_URL" -tAc \
  "SELECT datname FROM pg_database WHERE datname LIKE 'payments_test_%' OR datname LIKE 'payments_build_%'" |
  while read -r db; do [[ -n "$db" ]] && psql "$PAYMENTS_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; done

if [[ "${1:-}" == bench ]]; then
  # Benchmarks run without the race detector, which would distort them.
  go test -run '^$' -bench . -benchtime "${BENCHTIME:-5s}" -timeout 20m ./...
  exit 0
fi
go vet ./...
go test -race -count=1 -timeout 12m ${GOTESTFLAGS:-} ./...
