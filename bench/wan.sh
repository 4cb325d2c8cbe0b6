#!/usr/bin/env bash
# bench/wan.sh: `migrate mail` (default proof and --deep-verify) versus
# mbsync (isync, one-way pull with CopyArrivalDate) on two loopback
# Dovecots, each behind a delay line (internal/faultproxy.DelayLine, half
# the RTT each way), at 0, 5, 20 and 50 ms RTT: wall time, msg/s, client
# CPU, bytes on each link, ratios. Not a test: numbers go to stdout and
# bench/out/wan.log.
#
#   bench/wan.sh                           # the 10,121-message reference corpus
#   MESSAGES=2000 RTT=0,20 bench/wan.sh
#   MBSYNC= DEEP=false bench/wan.sh        # migrate only
#
# Needs dovecot, doveadm and mbsync.
set -euo pipefail
cd "$(dirname "$0")/.."
for bin in dovecot doveadm; do
  command -v "$bin" >/dev/null || { echo "wan.sh: $bin not installed" >&2; exit 2; }
done
mkdir -p bench/out
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
go build -o "$W/migrate" ./cmd/migrate
go build -o "$W/wanbench" ./bench/wanbench
"$W/wanbench" -migrate "$W/migrate" -messages "${MESSAGES:-0}" -rtt "${RTT:-0,5,20,50}" \
  -deep="${DEEP:-true}" -mbsync "${MBSYNC-mbsync}" -dir "$W" 2>&1 | tee bench/out/wan.log
