#!/usr/bin/env bash
# patroni.sh runs, on loopback ports, a three-member etcd cluster and three PostgreSQL 15 members
# under Patroni with synchronous replication: the supported high-availability
# setup for PostgreSQL (docs/runbooks/postgresql-ha-patroni.md).
#
#   scripts/patroni.sh install                  install Debian's patroni and etcd-server if missing
#   scripts/patroni.sh up   DIR BASE_PORT       start etcd and the three members, wait for a leader
#   scripts/patroni.sh down DIR BASE_PORT       stop them (the data is kept until DIR is deleted)
#   scripts/patroni.sh dsn  DIR BASE_PORT       print the multi-host DATABASE_URL
#
# Ports from BASE_PORT: etcd member j (0..2) has its client port on +2j and
# its peer port on +2j+1; PostgreSQL member i (0..2) has PostgreSQL on +10+i
# and the Patroni REST API on +20+i. etcd keeps the cluster state by Raft:
# with three members it survives the loss of any one.
set -euo pipefail

log() { printf 'patroni: %s\n' "$*" >&2; }
die() { printf 'patroni: %s\n' "$*" >&2; exit 1; }

ensure_packages() {
  local missing=()
  command -v patroni >/dev/null 2>&1 || missing+=(patroni)
  command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
  # patroni depends on one DCS client of several; etcd's is python3-etcd.
  /usr/bin/python3 -c 'import etcd' >/dev/null 2>&1 || missing+=(python3-etcd)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # policy-rc.d keeps the packages from starting system-wide services;
    # this script runs its own on private ports.
    local rc=/usr/sbin/policy-rc.d created=0
    if [[ ! -e $rc ]]; then printf '#!/bin/sh\nexit 101\n' >"$rc"; chmod +x "$rc"; created=1; fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || { [[ $created -eq 1 ]] && rm -f "$rc"; die "apt-get install ${missing[*]} failed"; }
    [[ $created -eq 1 ]] && rm -f "$rc"
    return 0
  fi
  die "missing ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}) and run again"
}

pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n "$d" && -x "$d/initdb" ]] || die "PostgreSQL is not installed: run scripts/services.sh up, which installs it"
  echo "$d"
}

member_conf() { # member_conf I: the Patroni configuration of member I
  local i=$1 pg=$((base + 10 + $1)) rest=$((base + 20 + $1))
  cat <<YAML
scope: payments
name: m$i
log:
  level: WARNING
restapi:
  listen: 127.0.0.1:$rest
  connect_address: 127.0.0.1:$rest
etcd3:
  hosts: 127.0.0.1:$base,127.0.0.1:$((base + 2)),127.0.0.1:$((base + 4))
bootstrap:
  dcs:
    # A leader that stops renewing its key loses it after ttl seconds.
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    # A commit is acknowledged only once a synchronous standby has it, and
    # only a synchronous standby may be promoted: nothing acknowledged is
    # lost when the primary dies.
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      parameters:
        synchronous_commit: "on"
        fsync: "on"
        max_connections: 300
        max_pred_locks_per_transaction: 512
        max_pred_locks_per_relation: -4
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 256MB
  initdb:
  - encoding: UTF8
  - locale: C
  - auth: trust
postgresql:
  listen: 127.0.0.1:$pg
  connect_address: 127.0.0.1:$pg
  data_dir: $dir/m$i/data
  bin_dir: $(pg_bindir)
  pgpass: $dir/m$i/pgpass
  authentication:
    superuser: {username: postgres, password: postgres}
    replication: {username: replicator, password: replicator}
    rewind: {username: postgres, password: postgres}
  parameters:
    unix_socket_directories: '$dir/m$i'
  # Loopback only, for local runs; a deployment uses scram-sha-256.
  pg_hba:
  - local all all trust
  - host all all 127.0.0.1/32 trust
  - host replication all 127.0.0.1/32 trust
YAML
}

up_etcd() {
  local j cluster="" started=0
  for j in 0 1 2; do
    cluster+="${cluster:+,}e$j=http://127.0.0.1:$((base + 2 * j + 1))"
  done
  exec_etcd() { exec setsid etcd "$@"; }
  for j in 0 1 2; do
    [[ -s $dir/etcd$j.pid ]] && kill -0 "$(cat "$dir/etcd$j.pid")" 2>/dev/null && continue
    mkdir -p "$dir/etcd$j"
    local client=$((base + 2 * j)) peer=$((base + 2 * j + 1))
    exec_etcd --name "e$j" --data-dir "$dir/etcd$j" \
      --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token payments \
      >"$dir/etcd$j.log" 2>&1 </dev/null 9>&- &
    echo $! >"$dir/etcd$j.pid"
    started=1
  done
  [[ $started == 1 ]] || return 0
  # Healthy once the members elected a Raft leader.
  for _ in $(seq 1 200); do
    curl -fsS "http://127.0.0.1:$base/health" 2>/dev/null | grep -q '"health":"true"' && return 0
    sleep 0.1
  done
  die "etcd did not become healthy, see $dir/etcd?.log"
}

up_member() { # up_member I
  local i=$1
  [[ -s $dir/m$i.pid ]] && kill -0 "$(cat "$dir/m$i.pid")" 2>/dev/null && return 0
  mkdir -p "$dir/m$i"
  member_conf "$i" >"$dir/m$i.yml"
  if [[ $(id -u) -eq 0 ]]; then chown -R postgres "$dir/m$i" "$dir/m$i.yml"; fi
  # setsid (no job control here, so it need not fork) and setpriv both
  # exec: $! is Patroni's own pid.
  local as=()
  if [[ $(id -u) -eq 0 ]]; then as=(setpriv --reuid=postgres --regid=postgres --init-groups); fi
  (cd / && exec setsid "${as[@]}" patroni "$dir/m$i.yml" >>"$dir/m$i.log" 2>&1 </dev/null 9>&-) &
  echo $! >"$dir/m$i.pid"

}

# cluster_state prints "leader sync_standbys streaming" as the REST API sees it.
cluster_state() {
  local i
  for i in 0 1 2; do
    if curl -fsS "http://127.0.0.1:$((base + 20 + i))/cluster" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
c = json.load(sys.stdin)
roles = [m["role"] for m in c["members"]]
running = [m for m in c["members"] if m["state"] in ("running", "streaming")]
print(roles.count("leader"), roles.count("sync_standby"), len(running))'; then return 0; fi
  done
  echo "0 0 0"
}

wait_healthy() {
  local state
  for _ in $(seq 1 1200); do
    state=$(cluster_state)
    [[ $state == "1 1 3" || $state == "1 2 3" ]] && return 0
    sleep 0.1
  done
  die "no leader with a synchronous standby and three running members after 120 s (state: $state); see $dir/m*.log"
}

down_all() {
  local f pid
  for f in "$dir"/m?.pid "$dir"/etcd?.pid; do
    [[ -s $f ]] || continue
    pid=$(cat "$f")
    # Only our own processes: the pid must still be patroni or etcd.
    if kill -0 "$pid" 2>/dev/null && grep -qE 'patroni|etcd' "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  # A member's PostgreSQL outlives a killed Patroni: stop what is left.
  for f in "$dir"/m?/data/postmaster.pid; do
    [[ -s $f ]] || continue
    pid=$(head -n 1 "$f")
    if kill -0 "$pid" 2>/dev/null && grep -q postgres "/proc/$pid/cmdline" 2>/dev/null; then
      kill -INT "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
}

cmd=${1:?usage: patroni.sh install|up|down|dsn|member DIR BASE_PORT [I]}
if [[ $cmd == install ]]; then ensure_packages; exit 0; fi
dir=${2:?data folder}
base=${3:?base port}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
case "$cmd" in
  up)
    ensure_packages
    if [[ $(id -u) -eq 0 ]]; then chown postgres "$dir"; fi
    up_etcd
    up_member 0
    # The first member bootstraps the cluster; the others clone it.
    for _ in $(seq 1 600); do
      curl -fsS -o /dev/null "http://127.0.0.1:$((base + 20))/primary" 2>/dev/null && break
      sleep 0.1
    done
    up_member 1
    up_member 2
    wait_healthy
    ;;
  member) # start (again) member I, such as after a kill
    up_member "${4:?member 0, 1 or 2}"
    ;;
  wait)
    wait_healthy
    ;;
  dsn)
    echo "postgres://postgres@127.0.0.1:$((base + 10)),127.0.0.1:$((base + 11)),127.0.0.1:$((base + 12))/postgres?sslmode=disable&target_session_attrs=read-write&connect_timeout=3"
    ;;
  down)
    down_all
    ;;
  *) die "unknown command $cmd" ;;
esac
