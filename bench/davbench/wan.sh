#!/usr/bin/env bash
# bench/davbench/wan.sh: calendars and contacts through a delay line
# (internal/faultproxy.DelayLine in front of each server) at several RTTs:
# the caldav+carddav copiers side by side at concurrency 1 and the default
# (4), and vdirsyncer when installed, between in-process go-webdav servers
# (keep-alive, no wait per write), so that the client's round trips and the
# per-host pacer (30 requests/s, 95% used), not a server, set the pace.
# Medians of RUNS runs. Not a test: numbers go to stdout and
# bench/out/davwan.log.
#
#   bench/davbench/wan.sh                              # 200 + 200 objects, 0,20,50,100 ms, 3 runs
#   EVENTS=500 CONTACTS=500 RTT=20 RUNS=1 bench/davbench/wan.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p bench/out
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT
go build -o "$W/davbench" ./bench/davbench
"$W/davbench" wan "${EVENTS:-200}" "${CONTACTS:-200}" "${RTT:-0,20,50,100}" "${CONCURRENCY:-1,4}" "${RUNS:-3}" 2>&1 | tee bench/out/davwan.log
