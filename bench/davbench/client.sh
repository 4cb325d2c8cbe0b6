#!/usr/bin/env bash
# bench/davbench/client.sh: the DAV client's own CPU per object against
# Radicale -> Radicale (figure 2 of bench/dav.sh), without vdirsyncer, so that
# several builds of `migrate` can be compared in one sitting. Runs are
# interleaved (run 1 of every build, then run 2, ...) so that load from other
# work on the machine falls on all builds alike; medians at the end.
#
#   bench/davbench/client.sh                      # this tree's migrate
#   bench/davbench/client.sh /tmp/old /tmp/new    # compare builds
#   EVENTS=1000 CONTACTS=1000 RUNS=3 EXTRA="--concurrency 1" bench/davbench/client.sh
#   PERF=1 bench/davbench/client.sh               # perf profile of `migrate calendars`
#
# Like bench/dav.sh, `migrate calendars` and `migrate contacts` run side by
# side with --verify=false; CPU is user+sys of both from /usr/bin/time.
# With PERF=1 each calendars run is recorded with `perf record -g` and the
# inclusive share of the main costs is printed (where the CPU goes).
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS="${EVENTS:-1000}"
CONTACTS="${CONTACTS:-1000}"
RUNS="${RUNS:-3}"
OBJECTS=$((EVENTS + CONTACTS))
for bin in radicale /usr/bin/time curl python3; do
  command -v "$bin" >/dev/null || { echo "client.sh: $bin not installed" >&2; exit 2; }
done
if [ "${PERF:-}" = 1 ]; then
  command -v perf >/dev/null || { echo "client.sh: PERF=1 needs perf" >&2; exit 2; }
fi
W="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

BINS=("$@")
if [ ${#BINS[@]} -eq 0 ]; then
  go build -o "$W/migrate" ./cmd/migrate
  BINS=("$W/migrate")
fi
go build -o "$W/davbench" ./bench/davbench

# free_port, start_radicale
. bench/radicale.sh

SRC_PORT="$(free_port)"
"$W/davbench" seed-radicale "$W/src" "$EVENTS" "$CONTACTS"
start_radicale "$W/src" "$SRC_PORT"
for c in bench-cal bench-book; do
  curl -s -o /dev/null -u user1:pass1 -X PROPFIND -H 'Depth: 1' "http://127.0.0.1:$SRC_PORT/user1/$c/"
done

export MIGRATE_FROM_PASSWORD=pass1 MIGRATE_TO_PASSWORD=pass1
RESULTS="$W/results.tsv"
: > "$RESULTS"
for run in $(seq "$RUNS"); do
  for i in "${!BINS[@]}"; do
    bin="${BINS[$i]}"
    port="$(free_port)"
    start_radicale "$W/dst-$run-$i" "$port"
    dpid=$RADICALE_PID
    common="--from http://127.0.0.1:$SRC_PORT/ --to http://127.0.0.1:$port/ --from-user user1 --to-user user1 --allow-plaintext --verify=false ${EXTRA:-}"
    wrap=""
    if [ "${PERF:-}" = 1 ]; then
      wrap="perf record -q -g -F 1999 -o $W/perf-$run-$i.data"
    fi
    if ! /usr/bin/time -f "%e %U %S" -o "$W/time" bash -c "$wrap '$bin' calendars $common >'$W/out1' 2>&1 & p1=\$!; '$bin' contacts $common >'$W/out2' 2>&1; s=\$?; wait \$p1 && exit \$s"; then
      echo "client.sh: $bin failed:" >&2
      cat "$W/out1" "$W/out2" >&2
      exit 1
    fi
    read -r wall user sys < "$W/time"
    echo -e "$i\t$run\t$wall\t$user\t$sys" >> "$RESULTS"
    awk -v b="$bin" -v r="$run" -v w="$wall" -v u="$user" -v s="$sys" -v n="$OBJECTS" \
      'BEGIN{printf "%s run %s: %.3f ms/object (user %.2f s, sys %.2f s), wall %.1f s\n", b, r, (u+s)/n*1000, u, s, w}'
    kill "$dpid" 2>/dev/null || true
    wait "$dpid" 2>/dev/null || true
    if [ "${PERF:-}" = 1 ]; then
      echo "  inclusive share of the calendars process's CPU samples:"
      perf report -i "$W/perf-$run-$i.data" --children --sort sym --stdio -g none 2>/dev/null |
        grep -E '\] (runtime\.sysmon|runtime\.schedule|net/http\.\(\*Transport\)\.dialConn|net/http\.\(\*persistConn\)\.(readLoop|writeLoop|close)|net/http\.\(\*Transport\)\.roundTrip|github\.com/zxmigrate/zxmigrate/dav\.(\(\*pair\)\.object|decodeMultistatus)|github\.com/zxmigrate/zxmigrate/ca[lr]d*dav\.\(\*?Rules\)\.Split|runtime\.gcBgMarkWorker|runtime\.mallocgc)$' |
        awk '{printf "    %7s  %s\n", $1, $NF}'
    fi
  done
done

echo "medians over $RUNS runs, $OBJECTS objects ($EVENTS events + $CONTACTS contacts):"
python3 - "$RESULTS" "$OBJECTS" "${BINS[@]}" <<'EOF'
import statistics, sys
res, n, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = [l.split("\t") for l in open(res) if l.strip()]
for i, b in enumerate(bins):
    mine = [r for r in rows if int(r[0]) == i]
    cpu = statistics.median((float(r[3]) + float(r[4])) / n * 1000 for r in mine)
    wall = statistics.median(float(r[2]) for r in mine)
    print(f"  {b}: {cpu:.3f} ms/object client CPU, wall {wall:.1f} s")
EOF
