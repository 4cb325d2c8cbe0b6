#!/usr/bin/env bash
# bench/mail.sh: `migrate mail` versus mbsync (isync, one-way A->B with
# CopyArrivalDate) on two loopback Dovecots: cold copy and
# no-op re-run, RUNS runs each, medians, ratios and peak RSS from
# /usr/bin/time -v; then one cold copy of 300 messages plus a 50 MB message
# for the memory bound. Not a test: numbers go to stdout and bench/out/mail.log.
#
#   bench/mail.sh                     # the 10,121-message reference corpus, 3 runs
#   MESSAGES=2000 RUNS=1 bench/mail.sh
#   MIGRATE_ARGS="--max-writers 1" MBSYNC= bench/mail.sh   # tuning, no mbsync
#
# Needs dovecot, doveadm, mbsync and /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES="${MESSAGES:-0}"
RUNS="${RUNS:-3}"
for bin in dovecot doveadm mbsync /usr/bin/time; do
  command -v "$bin" >/dev/null || { echo "mail.sh: $bin not installed" >&2; exit 2; }
done
mkdir -p bench/out
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
go build -o "$W/migrate" ./cmd/migrate
go build -o "$W/mailbench" ./bench/mailbench
"$W/mailbench" -migrate "$W/migrate" -messages "$MESSAGES" -runs "$RUNS" -dir "$W" \
  -mbsync "${MBSYNC-mbsync}" -migrate-args "${MIGRATE_ARGS:-}" -summaries bench/out/mail-summaries.txt 2>&1 | tee bench/out/mail.log
