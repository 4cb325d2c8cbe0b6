#!/usr/bin/env bash
# run.sh — measure the append paths into Dovecot: go-imap single APPENDs
# pipelined 4 deep vs. the append client (internal/imapappend) with
# MULTIAPPEND batches of 1, 16 and 64 messages. Each run appends the same
# corpus messages to a fresh Dovecot; the table gives medians of client CPU
# (getrusage of the test process) and Dovecot CPU (its master and reaped
# children from /proc/PID/stat), which stay meaningful on a busy machine.
#
#   bench/appendbench/run.sh            2,000 messages (~53 KB mean), 3 runs
#   bench/appendbench/run.sh 10000 5    10,000 messages, 5 runs
#
# The measurement lives in internal/imapappend/bench_test.go
# (TestAppendBench); it is skipped unless
# ZXMIGRATE_APPENDBENCH is set.
set -euo pipefail
cd "$(dirname "$0")/../.."
export ZXMIGRATE_APPENDBENCH="${1:-2000}" ZXMIGRATE_APPENDBENCH_RUNS="${2:-3}"
go test -count=1 -run '^TestAppendBench$' -v -timeout 60m ./internal/imapappend/ | sed -n 's/^ *bench_test.go:[0-9]*: //p; s/^        |/|/p'
