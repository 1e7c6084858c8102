#!/usr/bin/env bash
# generate.sh rewrites docs/design/schema.md from the migrations, for
# `make generate`. With PAYMENTS_TEST_DATABASE_URL set it uses that server;
# otherwise it starts the test PostgreSQL of `make test` (its ports:
# PAYMENTS_TEST_PG_PORT, PAYMENTS_TEST_REDIS_PORT) and stops it again unless
# it was already running.
set -euo pipefail
cd "$(dirname "$0")/../../.."

run() { go test -count=1 -run '^TestSchemaDiagramMatchesMigrations$' ./docs/design/schemagen -args -update; }

if [[ -n "${PAYMENTS_TEST_DATABASE_URL:-}" ]]; then
  run
  exit 0
fi

pg_port=${PAYMENTS_TEST_PG_PORT:-25432}
redis_port=${PAYMENTS_TEST_REDIS_PORT:-26379}
dir=.dev/test
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
started=0
if ! port_open "$pg_port"; then started=1; fi
scripts/services.sh up "$dir" "$pg_port" "$redis_port"
if [[ $started -eq 1 ]]; then
  trap 'scripts/services.sh down "$dir" "$pg_port" "$redis_port"' EXIT
fi
export PAYMENTS_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:${pg_port}/postgres?sslmode=disable"
run
