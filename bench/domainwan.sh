#!/usr/bin/env bash
# bench/domainwan.sh: a domain's mail phase (migrate.Runner, default proof)
# against parallel mbsync processes, two settings, medians of RUNS runs:
#   loopback: 8 accounts × 1,000 messages, 4 at once, no delay line;
#   wan:      20 accounts × 500 messages, 20 at once, 20 ms RTT to each
#             server, the source letting each account run one FETCH at a
#             time (Zimbra's ImapCommandThrottle, emulated by
#             internal/faultproxy).
# Not a test: numbers go to stdout and bench/out/domainwan-*.log.
#
#   bench/domainwan.sh                  # both, 3 runs each
#   SET=wan RUNS=1 bench/domainwan.sh
#   SET=wan CONNS=80 bench/domainwan.sh  # the plan's IMAP connections per server (default: 3 per account at once, 32 to 100)
#   TMPFS=1 bench/domainwan.sh           # the Dovecots' mail in /dev/shm instead of the disk
#
# Needs dovecot, doveadm and mbsync.
set -euo pipefail
cd "$(dirname "$0")/.."
for bin in dovecot doveadm mbsync; do
  command -v "$bin" >/dev/null || { echo "domainwan.sh: $bin not installed" >&2; exit 2; }
done
mkdir -p bench/out
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
if [ -n "${TMPFS:-}" ]; then
  # The servers' files (testserver uses TMPDIR) on tmpfs: creating a file
  # on this VM's ext4 costs more the more files earlier runs deleted.
  T="$(mktemp -d /dev/shm/domainwan.XXXXXX)"
  chmod 755 "$T" # the servers' unprivileged users reach their directories through it
  trap 'rm -rf "$W" "$T"' EXIT
  export TMPDIR="$T"
fi
go build -o "$W/domainbench" ./bench/domainbench
runs="${RUNS:-3}"
sfx="${TMPFS:+-tmpfs}"
case "${SET:-all}" in all|loopback)
  "$W/domainbench" -accounts 8 -messages 1000 -parallel 4 -runs "$runs" 2>&1 | tee bench/out/domainwan-loopback$sfx.log ;;
esac
case "${SET:-all}" in all|wan)
  "$W/domainbench" -accounts 20 -messages "${WAN_MESSAGES:-500}" -parallel 20 -rtt 20ms -throttle -conns "${CONNS:-0}" -runs "$runs" 2>&1 | tee bench/out/domainwan-wan$sfx.log ;;
esac
