#!/usr/bin/env bash
# restore-drill.sh is `make restore-drill`: it proves that a base backup
# plus archived WAL restores every acknowledged payment.
#
#  1. A source PostgreSQL with WAL archiving (wal_level=replica,
#     archive_command copying each segment to an archive folder), migrated,
#     serving a real `payments serve`.
#  2. Payments, captures and refunds through the HTTP API; then
#     pg_basebackup; then more of them, which only the WAL holds.
#  3. The last segment is switched and archived, the API and the source stop.
#  4. A fresh cluster is made from the base backup with recovery.signal and
#     a restore_command reading the archive: it replays the WAL and
#     promotes itself.
#  5. Checks on the restored cluster: every payment the API acknowledged is
#     there with the same amounts and status, the ledger's entries and
#     balances equal the source's, every ledger transaction sums to zero,
#     and `payments ledger verify` passes when the binary has it.
#
# It prints the time the restore took (the drill's RTO) and what was lost
# (its RPO: must be nothing, since every segment was archived). Everything
# runs on loopback ports of its own, in a temporary folder removed at the
# end (DRILL_KEEP=1 keeps it). Payments: DRILL_PAYMENTS (default 200, half
# before the backup, half after).
set -euo pipefail
cd "$(dirname "$0")/.."

src_port=${DRILL_SRC_PORT:-27432}
dst_port=${DRILL_DST_PORT:-27433}
redis_port=${DRILL_REDIS_PORT:-27379}
api_port=${DRILL_API_PORT:-27080}
payments_total=${DRILL_PAYMENTS:-200}

log() { printf 'restore-drill: %s\n' "$*" >&2; }
die() { printf 'restore-drill: FAIL: %s\n' "$*" >&2; exit 1; }

# The services script installs PostgreSQL and Redis when they are missing.
scripts/services.sh up .dev/drill-probe "$src_port" "$redis_port" >/dev/null
scripts/services.sh down .dev/drill-probe "$src_port" "$redis_port" >/dev/null
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -x "$bindir/pg_basebackup" ]] || bindir=$(dirname "$(command -v pg_basebackup)")
as_pg() { if [[ $(id -u) -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

work=$(mktemp -d /tmp/payments-drill.XXXXXX)
[[ $(id -u) -eq 0 ]] && chown postgres "$work"
src=$work/src dst=$work/restored archive=$work/archive base=$work/base
as_pg mkdir -p "$archive"
api_pid=
cleanup() {
  [[ -n "$api_pid" ]] && kill "$api_pid" 2>/dev/null || true
  for d in "$src" "$dst"; do [[ -s "$d/PG_VERSION" ]] && as_pg "$bindir/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true; done
  [[ -s "$work/redis.pid" ]] && kill "$(cat "$work/redis.pid")" 2>/dev/null || true
  if [[ "${DRILL_KEEP:-}" == 1 ]]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

opts="-c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=on -c synchronous_commit=on"
opts+=" -c max_pred_locks_per_transaction=512 -c max_pred_locks_per_relation=-4"
as_pg "$bindir/initdb" -D "$src" -U postgres --auth=trust -E UTF8 --locale=C >"$work/initdb.log" 2>&1 || die "initdb failed: $(cat "$work/initdb.log")"
as_pg "$bindir/pg_ctl" -D "$src" -l "$work/src.log" -w -t 60 start \
  -o "-p $src_port $opts -c wal_level=replica -c archive_mode=on -c archive_command='test ! -f $archive/%f && cp %p $archive/%f'" >/dev/null \
  || die "source did not start: $(tail -5 "$work/src.log")"
redis-server --port "$redis_port" --bind 127.0.0.1 --daemonize yes --pidfile "$work/redis.pid" \
  --logfile "$work/redis.log" --save "" --appendonly no >/dev/null

src_url="postgres://postgres@127.0.0.1:$src_port/postgres?sslmode=disable"
dst_url="postgres://postgres@127.0.0.1:$dst_port/postgres?sslmode=disable"
go build -o "$work/payments" ./cmd/payments
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export DATABASE_URL=$src_url REDIS_URL="redis://127.0.0.1:$redis_port/0" PAYMENTS_ADMIN_TOKEN=$token
export PAYMENTS_HTTP_ADDR=127.0.0.1:$api_port PAYMENTS_LOG_LEVEL=warn
"$work/payments" migrate up >/dev/null
"$work/payments" serve >"$work/api.log" 2>&1 &
api_pid=$!
base_url=http://$PAYMENTS_HTTP_ADDR
for _ in $(seq 1 200); do curl -fsS "$base_url/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
curl -fsS "$base_url/healthz" >/dev/null || die "the API did not start: $(tail -5 "$work/api.log")"

secret=$(curl -fsS -X POST "$base_url/v1/admin/tenants" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d '{"name":"Drill","region":"local"}' | sed -n 's/.*"secret":"\([^"]*\)".*/\1/p')
[[ -n "$secret" ]] || die "no tenant secret"

acked=$work/acked.tsv # payment id, amount, status: what the API acknowledged
: >"$acked"
pay() {
  local n=$1 i body out id amount status
  for i in $(seq 1 "$n"); do
    amount=$((1000 + RANDOM % 9000))
    body="{\"amount\":$amount,\"currency\":\"usd\",\"payment_method\":\"pm_card_visa\"}"
    out=$(curl -fsS -X POST "$base_url/v1/payments" -H "Authorization: Bearer $secret" \
      -H 'Content-Type: application/json' -H "Idempotency-Key: drill-$RANDOM-$i-$n" -d "$body") || die "payment refused"
    id=$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' <<<"$out")
    status=$(sed -n 's/.*"status":"\([^"]*\)".*/\1/p' <<<"$out")
    if ((i % 4 == 0)); then
      curl -fsS -X POST "$base_url/v1/refunds" -H "Authorization: Bearer $secret" -H 'Content-Type: application/json' \
        -d "{\"payment\":\"$id\",\"amount\":$((amount / 2))}" >/dev/null || die "refund refused"
    fi
    printf '%s\t%s\t%s\n' "$id" "$amount" "$status" >>"$acked"
  done
}

before=$((payments_total / 2))
pay "$before"
log "$before payments before the base backup"
secs_since() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%01d' $((ms / 1000)) $((ms % 1000 / 100)); }
t0=$(date +%s%N)
as_pg "$bindir/pg_basebackup" -h 127.0.0.1 -p "$src_port" -U postgres -D "$base" -X none -c fast >/dev/null
log "base backup in $(secs_since "$t0") s"
pay "$((payments_total - before))"
log "$((payments_total - before)) payments after it, in the WAL only"

kill "$api_pid"; wait "$api_pid" 2>/dev/null || true; api_pid=
fingerprint() { # every row that matters, order-independent
  psql "$1" -tAq -c "SELECT count(*), coalesce(sum(amount),0), coalesce(sum(amount_captured),0), coalesce(sum(amount_refunded),0) FROM payments" \
    -c "SELECT count(*), coalesce(sum(abs(amount)),0) FROM ledger_entries" \
    -c "SELECT count(*) FROM refunds" -c "SELECT count(*) FROM events"
}
src_print=$(fingerprint "$src_url")
last=$(psql "$src_url" -tAc "SELECT pg_walfile_name(pg_switch_wal())")
for _ in $(seq 1 300); do
  [[ "$(psql "$src_url" -tAc "SELECT last_archived_wal FROM pg_stat_archiver")" > "$last" ||
     "$(psql "$src_url" -tAc "SELECT last_archived_wal FROM pg_stat_archiver")" == "$last" ]] && break
  sleep 0.1
done
[[ -f "$archive/$last" ]] || die "segment $last was not archived"
as_pg "$bindir/pg_ctl" -D "$src" -m fast -w stop >/dev/null

t0=$(date +%s%N)
as_pg cp -a "$base" "$dst"
as_pg touch "$dst/recovery.signal"
as_pg sh -c "printf \"restore_command = 'cp $archive/%%f %%p'\\nrecovery_target_timeline = 'latest'\\n\" >> '$dst/postgresql.auto.conf'"
as_pg "$bindir/pg_ctl" -D "$dst" -l "$work/dst.log" -w -t 300 start -o "-p $dst_port $opts" >/dev/null \
  || die "restored cluster did not start: $(tail -5 "$work/dst.log")"
for _ in $(seq 1 600); do
  [[ "$(psql "$dst_url" -tAc 'SELECT pg_is_in_recovery()' 2>/dev/null)" == f ]] && break
  sleep 0.1
done
[[ "$(psql "$dst_url" -tAc 'SELECT pg_is_in_recovery()')" == f ]] || die "the restored cluster never left recovery"
rto=$(secs_since "$t0")

dst_print=$(fingerprint "$dst_url")
[[ "$src_print" == "$dst_print" ]] || die "restored data differs from the source:
source:   $(tr '\n' ' ' <<<"$src_print")
restored: $(tr '\n' ' ' <<<"$dst_print")"

# Every acknowledged payment, by its public ID, with its amount and status.
export DATABASE_URL=$dst_url
"$work/payments" serve >"$work/api.log" 2>&1 &
api_pid=$!
for _ in $(seq 1 200); do curl -fsS "$base_url/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
lost=0
while IFS=$'\t' read -r id amount status; do
  got=$(curl -fsS "$base_url/v1/payments/$id" -H "Authorization: Bearer $secret" 2>/dev/null || true)
  if ! grep -q "\"amount\":$amount," <<<"$got" || ! grep -q "\"status\":\"$status\"" <<<"$got"; then
    lost=$((lost + 1))
    log "acknowledged payment $id ($amount, $status) is missing or differs after the restore"
  fi
done <"$acked"
((lost == 0)) || die "$lost of $(wc -l <"$acked") acknowledged payments lost"

unbalanced=$(psql "$dst_url" -tAc "SELECT count(*) FROM (SELECT tenant_id, transaction_id FROM ledger_entries GROUP BY tenant_id, transaction_id HAVING sum(amount) <> 0) t")
((unbalanced == 0)) || die "$unbalanced ledger transactions do not sum to zero after the restore"
verified="not available in this build"
if "$work/payments" help 2>&1 | grep -q 'ledger verify'; then
  "$work/payments" ledger verify >"$work/verify.log" 2>&1 || die "payments ledger verify failed: $(tail -5 "$work/verify.log")"
  verified=passed
fi

cat <<EOF
restore drill passed
  acknowledged payments:  $(wc -l <"$acked") ($before before the base backup, $((payments_total - before)) in the WAL only)
  lost:                   $lost (RPO 0: every WAL segment was archived before the source stopped)
  restore time:           $rto s (copy of the base backup, WAL replay, promotion; the drill's RTO)
  source = restored:      payments, ledger entries, refunds, events ($(tr '\n' ' ' <<<"$dst_print"))
  ledger sums to zero:    yes
  payments ledger verify: $verified
EOF
