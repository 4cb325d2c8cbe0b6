#!/usr/bin/env bash
# Full-size chaos run: mail copy of 10,000 messages through the
# fault proxies with >= 100 injected faults and state-file losses, >= 20
# SIGKILLs of a copy process with resumes, calendars/contacts through HTTP
# 503s and resets, the admin API watched through dropped connections, the
# secret scan and the TLS checks. Prints the figures README's "Reliability"
# section quotes (lines starting with the test name and "chaos:").
#
# Usage: bench/chaos.sh [extra go test flags]   (e.g. -run 'Mail' or -race)
# Needs ~3 GB of RAM (two in-memory IMAP servers hold the corpus) and runs
# for tens of minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp -t zxm-chaos.XXXXXX)
echo "chaos: full-size run, log in $log"
start=$(date +%s)
status=0
ZXM_CHAOS_FULL=1 go test -count=1 -timeout 3h -v "$@" ./internal/chaos/ >"$log" 2>&1 || status=$?
end=$(date +%s)
grep -E '^(=== RUN|--- (PASS|FAIL|SKIP)|\s+[a-z_]+_test\.go:[0-9]+: (mail|dav|carbonio|kill|secret|IMAP|SOAP|DAV))' "$log" | grep -v '=== RUN' || true
echo "chaos: exit $status after $((end - start)) s (full log: $log)"
exit $status
