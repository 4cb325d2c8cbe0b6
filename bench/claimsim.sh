#!/usr/bin/env bash
# bench/claimsim.sh: many runners draining one PostgreSQL store. ACCOUNTS
# accounts, WORKERS workers over PROCS runner processes, fake copy work of
# COPY on average, one process killed with SIGKILL when KILL_AT of the
# accounts are finished. Prints claims per second, the time to drain, lease
# takeovers and the coordination cost per account (wall time and CPU).
# Not a test: numbers go to stdout and bench/out/claimsim.log.
#
#   bench/claimsim.sh                                   # 50,000 accounts, own PostgreSQL
#   ACCOUNTS=5000 bench/claimsim.sh
#   URL=postgres://zx@db.example:5432/zxbench?sslmode=verify-full bench/claimsim.sh
#       # the password from $MIGRATE_STATE_PASSWORD, ~/.pgpass, ...; the
#       # database's accounts, phases, slots and jobs tables are emptied.
#
# Needs PostgreSQL's server programs (apt-get install postgresql) unless URL
# is given.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
go build -o "$W/claimsim" ./bench/claimsim
args=(-accounts "${ACCOUNTS:-50000}" -procs "${PROCS:-4}" -workers "${WORKERS:-64}"
  -copy "${COPY:-10ms}" -ttl "${TTL:-10s}" -kill-at "${KILL_AT:-0.5}" -durable="${DURABLE:-true}")
if [ -n "${URL:-}" ]; then args+=(-url "$URL"); fi
{
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$W/claimsim" "${args[@]}"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee bench/out/claimsim.log
