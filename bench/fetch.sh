#!/usr/bin/env bash
# bench/fetch.sh: what imapcopy's folder concurrency gains or costs against a
# source that runs one FETCH per account at a time (Zimbra's
# ImapCommandThrottle, emulated by internal/faultproxy), on two loopback
# Dovecots. Cold copies into a reset destination, RUNS runs per
# concurrency, with and without the throttle; medians. Not a test: numbers
# go to stdout and bench/out/fetch.log.
#
#   bench/fetch.sh                        # 3,000 messages, 3 runs, concurrency 1-4
#   MESSAGES=0 RUNS=5 bench/fetch.sh      # the 10,121-message reference corpus
#
# Needs dovecot and doveadm.
set -euo pipefail
cd "$(dirname "$0")/.."
for bin in dovecot doveadm; do
  command -v "$bin" >/dev/null || { echo "fetch.sh: $bin not installed" >&2; exit 2; }
done
mkdir -p bench/out
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
go build -o "$W/fetchbench" ./bench/fetchbench
"$W/fetchbench" -messages "${MESSAGES:-3000}" -runs "${RUNS:-3}" -concurrency "${CONCURRENCY:-1,2,3,4}" 2>&1 | tee bench/out/fetch.log
