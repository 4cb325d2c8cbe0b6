#!/usr/bin/env bash
# bench/wan.sh: `migrate mail` (default proof, and --deep-verify once per
# RTT) versus mbsync (isync, one-way pull with CopyArrivalDate) and imapsync
# on two loopback Dovecots, each behind a delay line
# (internal/faultproxy.DelayLine, half the RTT each way), at 0, 5, 20 and
# 50 ms RTT: wall time, msg/s, client CPU, bytes on each link, medians and
# ratios. The tools alternate within each run. Not a test: numbers go to
# stdout and bench/out/wan.log.
#
#   bench/wan.sh                                  # the 10,121-message reference corpus, 3 runs
#   MESSAGES=2000 RTT=0,20 RUNS=1 bench/wan.sh
#   IMAPSYNC=$HOME/imapsync/imapsync IMAPSYNC_CAP=120s bench/wan.sh
#   MBSYNC= DEEP=false bench/wan.sh               # migrate only
#   MIGRATE_ARGS="--log-level debug" LOGS=/tmp/l bench/wan.sh  # each run's stderr to /tmp/l
#
# imapsync is not a Debian package: see bench/README.md for how to fetch it
# and its Perl dependencies; IMAPSYNC names the script. IMAPSYNC_RUNS (1)
# sets its runs per RTT, IMAPSYNC_CAP (none) stops it after that long and
# rates it on the messages it had copied.
#
# Needs dovecot, doveadm and mbsync.
set -euo pipefail
cd "$(dirname "$0")/.."
for bin in dovecot doveadm; do
  command -v "$bin" >/dev/null || { echo "wan.sh: $bin not installed" >&2; exit 2; }
done
imapsync=""
if [ -n "${IMAPSYNC:-}" ] && [ -x "${IMAPSYNC}" ]; then
  imapsync="$(cd "$(dirname "$IMAPSYNC")" && pwd)/$(basename "$IMAPSYNC")"
else
  echo "imapsync: not found, set IMAPSYNC"
fi
mkdir -p bench/out
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
go build -o "$W/migrate" ./cmd/migrate
go build -o "$W/wanbench" ./bench/wanbench
"$W/wanbench" -migrate "$W/migrate" -messages "${MESSAGES:-0}" -rtt "${RTT:-0,5,20,50}" -runs "${RUNS:-3}" \
  -deep="${DEEP:-true}" -mbsync "${MBSYNC-mbsync}" -imapsync "$imapsync" -imapsync-runs "${IMAPSYNC_RUNS:-1}" \
  -imapsync-cap "${IMAPSYNC_CAP:-0}" -migrate-args "${MIGRATE_ARGS:-}" -logs "${LOGS:-}" -dir "$W" 2>&1 | tee bench/out/wan.log
