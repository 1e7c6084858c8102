#!/usr/bin/env bash
# chaos.sh is `make chaos`: the fault-injection suite (chaos/) for
# CHAOS_DURATION (default 10m) with seed CHAOS_SEED (default: from the
# clock; the run prints it, and the same seed replays the same schedule of
# faults and the same client choices), then the Patroni failover scenario.
# It needs postgresql and redis-server (scripts/services.sh installs them)
# and patroni, etcd-server and python3-etcd (scripts/patroni.sh installs
# them). Results: chaos-results/ (table.md, patroni.md, history.json,
# logs/).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${CHAOS_DURATION:-10m}
seed=${CHAOS_SEED:-0}
patroni=${CHAOS_PATRONI:-true}

command -v redis-server >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || {
  echo "chaos: PostgreSQL and Redis are needed: run scripts/services.sh up .dev/test 25432 26379 once (it installs them), or apt-get install postgresql redis-server" >&2
  exit 1
}
run='TestChaos'
if [[ $patroni == true ]]; then
  scripts/patroni.sh install
  run='TestChaos|TestPatroniFailover'
fi
out=chaos-results
rm -rf "$out"; mkdir -p "$out/logs"
set +e
go test -count=1 -timeout 90m -v -run "^($run)\$" ./chaos -args \
  -chaos.duration="$duration" -chaos.seed="$seed" -chaos.patroni="$patroni" -chaos.strict \
  -chaos.report="$PWD/$out/table.md" -chaos.patroni.report="$PWD/$out/patroni.md" \
  -chaos.history="$PWD/$out/history.json" -chaos.logs="$PWD/$out/logs" 2>&1 | tee "$out/run.log" | grep -v '^        {'
status=${PIPESTATUS[0]}
set -e
echo "chaos: results in $out/ (table.md, patroni.md, history.json, logs/)"
exit "$status"
