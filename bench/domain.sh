#!/usr/bin/env bash
# bench/domain.sh: 4 accounts in parallel with zxmigrate (the mail phase of a
# plan) versus 4 parallel mbsync processes, on two loopback Dovecot servers
# median of 3 runs each. Prints aggregate messages per second
# and the ratio. The full log goes to bench/out/domain.log.
#
#   bench/domain.sh            # 4 x 2,500 messages
#   MESSAGES=500 bench/domain.sh
#
# Needs dovecot-core, dovecot-imapd and isync (mbsync).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
export ZXMIGRATE_BENCH=1
export ZXMIGRATE_BENCH_MESSAGES="${MESSAGES:-2500}"
status=0
go test -count=1 -timeout 60m -run '^TestBenchDomain$' -v ./migrate/ > bench/out/domain.log 2>&1 || status=$?
grep -E '^BENCH|zxmigrate run|mbsync    run|corpus:' bench/out/domain.log || true
if [ "$status" -ne 0 ]; then
  echo "benchmark failed (exit $status); see bench/out/domain.log" >&2
  tail -40 bench/out/domain.log >&2
fi
exit "$status"
