#!/usr/bin/env bash
# bench-balance.sh measures GET /v1/balance and GET /v1/balance?at= over HTTP
# for tenants with 10,000, 1,000,000 and 10,000,000 ledger entries
# (BENCH_SIZES). It starts its own PostgreSQL and Redis under .dev/bench,
# creates the database ledger_bench, one tenant per size, seeds each with
# scripts/seed-ledger.sql (1,000 payments/s of history), backfills the
# checkpoints with `payments ledger close`, serves the API and runs
# BenchmarkBalanceHTTP (api/balance_bench_test.go) against it.
#
#   PAYMENTS_DEV_PG_PORT=15432 PAYMENTS_DEV_REDIS_PORT=16379 PAYMENTS_HTTP_ADDR=127.0.0.1:8080 scripts/bench-balance.sh
#
# Seeding 10M entries takes several minutes on a 2-core machine.
set -euo pipefail
pg_port=${PAYMENTS_DEV_PG_PORT:-15432}
redis_port=${PAYMENTS_DEV_REDIS_PORT:-16379}
addr=${PAYMENTS_HTTP_ADDR:-127.0.0.1:8080}
sizes=${BENCH_SIZES:-10000 1000000 10000000}
requests=${BENCH_REQUESTS:-2000}
dir=.dev/bench

scripts/services.sh up "$dir" "$pg_port" "$redis_port"
admin="postgres://postgres@127.0.0.1:$pg_port"
psql -q "$admin/postgres" -c 'DROP DATABASE IF EXISTS ledger_bench' -c 'CREATE DATABASE ledger_bench'
export DATABASE_URL="$admin/ledger_bench?sslmode=disable"
export REDIS_URL="redis://127.0.0.1:$redis_port/0"
PAYMENTS_ADMIN_TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export PAYMENTS_ADMIN_TOKEN PAYMENTS_HTTP_ADDR="$addr" PAYMENTS_LOG_LEVEL=warn
export PAYMENTS_RATE_LIMIT_PER_SECOND=1000000 PAYMENTS_RATE_LIMIT_BURST=1000000
# One seal period would hold more than ledger.SealEntriesMax entries of
# this history; balances do not depend on seals.
export PAYMENTS_LEDGER_SEAL_PERIOD_SECONDS=0
go build -o "$dir/payments" ./cmd/payments
"$dir/payments" migrate up >/dev/null

declare -A secrets from to
for size in $sizes; do
  created=$("$dir/payments" tenant create --name "bench-$size" --region local)
  secrets[$size]=$(jq -r .api_key.secret <<<"$created")
  tenant=$(psql -qtA "$DATABASE_URL" -c "SELECT tenant_id FROM tenants WHERE name = 'bench-$size'")
  n=$(( (size + 2) / 3 ))
  start=$(date +%s)
  psql -q "$DATABASE_URL" -v n="$n" -v rate=1000 -v tenant="$tenant" -f scripts/seed-ledger.sql
  echo "seeded $((n * 3)) entries for $tenant in $(( $(date +%s) - start )) s"
  read -r f t < <(psql -qtA -F ' ' "$DATABASE_URL" -c \
    "SELECT extract(epoch FROM min(created_at))::BIGINT, extract(epoch FROM max(created_at))::BIGINT FROM ledger_entries WHERE tenant_id = '$tenant'")
  from[$size]=$f
  to[$size]=$t
done
start=$(date +%s)
"$dir/payments" ledger close
echo "ledger close took $(( $(date +%s) - start )) s"
psql -qtA "$DATABASE_URL" -c "SELECT count(DISTINCT (tenant_id, as_of)) || ' checkpoints, ' || count(*) || ' rows' FROM ledger_checkpoints"

"$dir/payments" serve &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "http://$addr/healthz" >/dev/null && break; sleep 0.2; done
for size in $sizes; do
  echo "== $size entries"
  PAYMENTS_BENCH_URL="http://$addr" PAYMENTS_BENCH_KEY="${secrets[$size]}" \
    PAYMENTS_BENCH_AT_FROM="${from[$size]}" PAYMENTS_BENCH_AT_TO="${to[$size]}" \
    go test ./api -run '^$' -bench BenchmarkBalanceHTTP -benchtime "${requests}x" -count 1 | grep -E '^Benchmark'
done
