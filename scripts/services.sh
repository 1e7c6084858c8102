#!/usr/bin/env bash
# services.sh starts (or reuses) the local PostgreSQL and Redis that `make run`
# and `make test` need, each with its own ports and data folder.
#
#   scripts/services.sh up   DIR PG_PORT REDIS_PORT   start or reuse, print nothing else on success
#   scripts/services.sh down DIR PG_PORT REDIS_PORT   stop both, keep the data
#
# Installs Debian's postgresql and redis-server packages with apt-get when they
# are missing and the script runs as root; otherwise it says what to install.
# PostgreSQL refuses to run as root, so as root it runs as the postgres user.
set -euo pipefail

cmd=${1:?usage: services.sh up|down DIR PG_PORT REDIS_PORT}
dir=${2:?data folder}
pg_port=${3:?postgres port}
redis_port=${4:?redis port}

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: %s\n' "$*" >&2; exit 1; }

pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "$d" && -x "$d/initdb" ]]; then echo "$d"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  if command -v pg_config >/dev/null 2>&1 && [[ -x "$(pg_config --bindir)/initdb" ]]; then pg_config --bindir; return; fi
  return 1
}

ensure_packages() {
  local missing=()
  pg_bindir >/dev/null || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # policy-rc.d keeps the packages from starting their own system-wide
    # instances; this script runs its own on private ports.
    local rc=/usr/sbin/policy-rc.d created=0
    if [[ ! -e $rc ]]; then printf '#!/bin/sh\nexit 101\n' >"$rc"; chmod +x "$rc"; created=1; fi
    apt-get install -y -qq "${missing[@]}" >/dev/null || { [[ $created -eq 1 ]] && rm -f "$rc"; die "apt-get install ${missing[*]} failed"; }
    [[ $created -eq 1 ]] && rm -f "$rc"
    return 0
  fi
  die "missing ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}; macOS: brew install postgresql@15 redis) and run again"
}

# as_pg runs a command as the user that owns the PostgreSQL data folder,
# from / so that a checkout the postgres user cannot enter is no obstacle.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pg_data_dir() {
  local want="$dir/pgdata"
  if [[ $(id -u) -ne 0 ]]; then echo "$want"; return; fi
  # The postgres user must be able to reach the folder. When the checkout
  # lives somewhere it cannot enter (such as /root), keep the cluster in a
  # folder of its own named after the checkout and link to it.
  # The check uses the absolute path and runs from /: a relative path would
  # resolve from the inherited working directory and hide the problem.
  if (cd / && runuser -u postgres -- test -x "$dir"); then echo "$want"; return; fi
  local alt
  alt="/var/lib/payments-dev/$(printf '%s' "$dir" | sha256sum | cut -c1-16)"
  mkdir -p "$alt"; chown postgres "$alt"
  ln -sfn "$alt" "$dir/pgdata-link"
  echo "$alt/pgdata"
}

pg_up() {
  local bin data
  bin=$(pg_bindir)
  data=$(pg_data_dir)
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" 2>/dev/null; then
    # Reuse only this folder's own server, never another checkout's that
    # happens to listen on the port.
    local theirs ours
    theirs=$(psql -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -tAc 'SHOW data_directory' 2>/dev/null || true)
    ours=$(readlink -f "$data" 2>/dev/null || echo "$data")
    if [[ -n "$theirs" && "$(readlink -f "$theirs" 2>/dev/null || echo "$theirs")" != "$ours" ]]; then
      die "port $pg_port serves another PostgreSQL (data in $theirs, not $ours): choose another port"
    fi
    return 0
  fi
  mkdir -p "$(dirname "$data")"
  if [[ ! -s "$data/PG_VERSION" ]]; then
    mkdir -p "$data"
    [[ $(id -u) -eq 0 ]] && chown postgres "$data" "$(dirname "$data")"
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
      || die "initdb failed, see $dir/initdb.log"
  fi
  [[ $(id -u) -eq 0 ]] && chown postgres "$dir" 2>/dev/null || true
  local logf="$data/../postgres-$pg_port.log"
  # pg_ctl starts the server in a session of its own, so Ctrl-C in the
  # terminal stops the API and leaves the database running.
  # Durable as in production (fsync and synchronous_commit on). Predicate
  # locks: room for a group-commit batch of 64 before PostgreSQL escalates
  # to a relation lock (docs/ARCHITECTURE.md). Memory and WAL: a working
  # set in shared buffers and checkpoints minutes apart, so that a
  # checkpoint's burst of full-page writes does not set the latency tail.
  # pg_stat_statements: per-statement cost under load.
  local opts="-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=300"
  opts+=" -c fsync=on -c synchronous_commit=on"
  opts+=" -c max_pred_locks_per_transaction=512 -c max_pred_locks_per_relation=-4"
  opts+=" -c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=15min"
  opts+=" -c shared_preload_libraries=pg_stat_statements"
  as_pg "$bin/pg_ctl" -D "$data" -l "$logf" -w -t 60 -o "$opts" start >/dev/null 9>&- \
    || die "postgres did not start, see $logf"
}

redis_up() {
  mkdir -p "$dir/redis"
  if redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then
    # As for PostgreSQL: only this folder's own Redis is reused.
    local theirs
    theirs=$(redis-cli -h 127.0.0.1 -p "$redis_port" config get dir 2>/dev/null | sed -n 2p || true)
    if [[ -n "$theirs" && "$theirs" != "$(cd "$dir/redis" && pwd -P)" ]]; then
      die "port $redis_port serves another Redis (data in $theirs): choose another port"
    fi
    return 0
  fi
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$(cd "$dir/redis" && pwd)" \
    --daemonize yes --pidfile "$(cd "$dir/redis" && pwd)/redis.pid" --logfile redis.log \
    --save "" --appendonly no >/dev/null 9>&- || die "redis-server did not start, see $dir/redis/redis.log"
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "redis-server did not answer on port $redis_port, see $dir/redis/redis.log"
}

pg_down() {
  local bin data
  bin=$(pg_bindir) || return 0
  data=$(pg_data_dir)
  [[ -s "$data/PG_VERSION" ]] || return 0
  as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

redis_down() {
  # Stop only the Redis this data folder started, never another one that
  # happens to listen on the port.
  local pidfile="$dir/redis/redis.pid" pid
  [[ -s "$pidfile" ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null && grep -q redis-server "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
}

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
case "$cmd" in
  up)
    ensure_packages
    # One start at a time per data folder: a second `make run` waits here and
    # then finds the services running. The daemons must not inherit the lock
    # (9>&- on their command lines), or it would be held until they stop.
    exec 9>"$dir/.services.lock"
    flock -w 300 9 || die "another start holds $dir/.services.lock for 5 minutes; is a start stuck?"
    pg_up
    redis_up
    ;;
  down)
    redis_down
    pg_down
    ;;
  *) die "unknown command $cmd" ;;
esac
