#!/usr/bin/env bash
# run.sh is `make run`: local services under ./.dev, migrations, then the API
# in the foreground. Variables the caller set are passed through unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_port=${PAYMENTS_DEV_PG_PORT:-15432}
redis_port=${PAYMENTS_DEV_REDIS_PORT:-16379}

scripts/services.sh up .dev "$pg_port" "$redis_port"

if [[ -z "${DATABASE_URL:-}" ]]; then
  if ! psql -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'payments'" | grep -q 1; then
    psql -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qc "CREATE DATABASE payments" >/dev/null 2>&1 || true
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:${pg_port}/payments?sslmode=disable"
fi
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:${redis_port}/0}

if [[ -z "${PAYMENTS_ADMIN_TOKEN:-}" ]]; then
  if [[ ! -s .dev/admin-token ]]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .dev/admin-token)
  fi
  PAYMENTS_ADMIN_TOKEN=$(cat .dev/admin-token)
  export PAYMENTS_ADMIN_TOKEN
  echo "PAYMENTS_ADMIN_TOKEN was not set; using the generated token in .dev/admin-token:"
  echo "  export PAYMENTS_ADMIN_TOKEN=$PAYMENTS_ADMIN_TOKEN"
fi
if [[ -z "${PAYMENTS_ENCRYPTION_KEY:-}" ]]; then
  # A local key seals webhook signing secrets and tenants' Stripe keys at
  # rest; it is kept next to the data it protects, which suits development
  # only. Production sets its own.
  if [[ ! -s .dev/encryption-key ]]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .dev/encryption-key)
  fi
  PAYMENTS_ENCRYPTION_KEY=$(cat .dev/encryption-key)
  export PAYMENTS_ENCRYPTION_KEY
fi
export PAYMENTS_HTTP_ADDR=${PAYMENTS_HTTP_ADDR:-127.0.0.1:8080}

go build -o bin/payments ./cmd/payments
bin/payments migrate up
echo "API on http://${PAYMENTS_HTTP_ADDR} (docs: http://${PAYMENTS_HTTP_ADDR}/docs); Ctrl-C stops it, the data stays in .dev"
exec bin/payments serve
