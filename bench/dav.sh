#!/usr/bin/env bash
# bench/dav.sh: zxmigrate's caldav+carddav copy versus vdirsyncer (one-way,
# fresh status) on a Radicale -> Radicale pair, plus the client's ceiling
# against in-process go-webdav servers. Median of RUNS runs each.
#
# Three figures:
#   1. wall time on the same Radicale->Radicale pair (Radicale sets the floor);
#   2. the client's own CPU per object (user+sys from /usr/bin/time -v);
#   3. objects per second against in-process go-webdav servers.
#
#   bench/dav.sh                         # 2,000 events + 2,000 contacts, 3 runs
#   EVENTS=200 CONTACTS=200 RUNS=1 bench/dav.sh
#
# Needs radicale, vdirsyncer and /usr/bin/time. The log goes to bench/out/dav.log.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-2000}"
CONTACTS="${CONTACTS:-2000}"
RUNS="${RUNS:-3}"
OBJECTS=$((EVENTS + CONTACTS))
mkdir -p bench/out
LOG=bench/out/dav.log
: > "$LOG"
for bin in radicale vdirsyncer /usr/bin/time curl python3; do
  command -v "$bin" >/dev/null || { echo "dav.sh: $bin not installed" >&2; exit 2; }
done
W="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

go build -o "$W/migrate" ./cmd/migrate
go build -o "$W/davbench" ./bench/davbench

# free_port, start_radicale
. bench/radicale.sh

stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# cpu_of PID: utime+stime in seconds.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$1/stat"; }

# count PORT COLL: objects in /user1/COLL/.
count() {
  curl -s -u user1:pass1 -X PROPFIND -H 'Depth: 1' "http://127.0.0.1:$1/user1/$2/" | grep -o '<response>' | wc -l | awk '{print ($1>0)?$1-1:0}'
}

# Source: seeded straight into Radicale's storage, then warmed up.
SRC_PORT="$(free_port)"
"$W/davbench" seed-radicale "$W/src" "$EVENTS" "$CONTACTS"
start_radicale "$W/src" "$SRC_PORT"
SRC_PID=$RADICALE_PID
for c in bench-cal bench-book; do
  n="$(count "$SRC_PORT" "$c")"
  echo "source $c: $n objects" | tee -a "$LOG"
done

RESULTS="$W/results.tsv"
: > "$RESULTS"

# measure TOOL RUN: copies into a fresh Radicale and records wall, client
# CPU and destination-server CPU.
measure() {
  local tool="$1" run="$2" port dst tfile
  port="$(free_port)"
  dst="$W/dst-$tool-$run"
  start_radicale "$dst" "$port" info
  local dpid=$RADICALE_PID
  sync; sleep 1
  local d0; d0="$(cpu_of "$dpid")"
  tfile="$W/time-$tool-$run"
  case "$tool" in
  vdirsyncer)
    local cfg="$W/vds-$run.conf"
    cat > "$cfg" <<EOF
[general]
status_path = "$W/vds-status-$run/"

[pair cal]
a = "src_cal"
b = "dst_cal"
collections = ["from a"]
conflict_resolution = "a wins"

[storage src_cal]
type = "caldav"
url = "http://127.0.0.1:$SRC_PORT/"
username = "user1"
password = "pass1"
read_only = true

[storage dst_cal]
type = "caldav"
url = "http://127.0.0.1:$port/"
username = "user1"
password = "pass1"

[pair book]
a = "src_book"
b = "dst_book"
collections = ["from a"]
conflict_resolution = "a wins"

[storage src_book]
type = "carddav"
url = "http://127.0.0.1:$SRC_PORT/"
username = "user1"
password = "pass1"
read_only = true

[storage dst_book]
type = "carddav"
url = "http://127.0.0.1:$port/"
username = "user1"
password = "pass1"
EOF
    /usr/bin/time -v -o "$tfile" bash -c "yes | vdirsyncer -c '$cfg' discover >>'$LOG' 2>&1 && vdirsyncer -c '$cfg' sync >>'$LOG' 2>&1"
    ;;
  zxmigrate)
    export MIGRATE_FROM_PASSWORD=pass1 MIGRATE_TO_PASSWORD=pass1
    local common=(--from "http://127.0.0.1:$SRC_PORT/" --to "http://127.0.0.1:$port/" --from-user user1 --to-user user1 --allow-plaintext --verify=false)
    /usr/bin/time -v -o "$tfile" bash -c "'$W/migrate' calendars ${common[*]} >>'$LOG' 2>&1 & p1=\$!; '$W/migrate' contacts ${common[*]} >>'$LOG' 2>&1; s=\$?; wait \$p1 && exit \$s"
    ;;
  esac
  local d1; d1="$(cpu_of "$dpid")"
  local wall user sys got
  wall="$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$tfile")"
  user="$(awk -F': ' '/User time/{print $2}' "$tfile")"
  sys="$(awk -F': ' '/System time/{print $2}' "$tfile")"
  got=$(( $(count "$port" bench-cal) + $(count "$port" bench-book) ))
  stop_pid "$dpid"
  # Requests the destination served (the count's PROPFINDs included), by method.
  local mix
  mix="$(grep -o '\] [A-Z]* request for' "$dst/radicale.log" | awk '{print $2}' | sort | uniq -c | awk '{printf "%s%s=%s", (NR>1?",":""), $2, $1}')"
  echo -e "$tool\t$run\t$wall\t$user\t$sys\t$(awk -v a="$d0" -v b="$d1" 'BEGIN{print b-a}')\t$got\t$mix" | tee -a "$RESULTS" >>"$LOG"
  if [ "$got" -ne "$OBJECTS" ]; then
    echo "dav.sh: $tool run $run left $got objects at the destination, want $OBJECTS" | tee -a "$LOG" >&2
  fi
}

for run in $(seq "$RUNS"); do
  measure vdirsyncer "$run"
  measure zxmigrate "$run"
done

INPROC="$W/inproc.txt"
for run in $(seq "$RUNS"); do
  "$W/davbench" inproc "$EVENTS" "$CONTACTS" | tee -a "$LOG" >> "$INPROC"
done

# The client alone against go-webdav servers in another process (keep-alive
# connections, no Radicale latency): its own CPU per object.
ALONE="$W/alone.tsv"
: > "$ALONE"
for run in $(seq "$RUNS"); do
  sp="$(free_port)"; dp="$(free_port)"
  "$W/davbench" serve "$EVENTS" "$CONTACTS" "$sp" "$dp" >>"$LOG" 2>&1 &
  spid=$!
  PIDS+=("$spid")
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$dp/" && break; sleep 0.1; done
  /usr/bin/time -f "%e %U %S" -o "$W/alone-time" "$W/davbench" copy "http://127.0.0.1:$sp/" "http://127.0.0.1:$dp/" >>"$LOG"
  cat "$W/alone-time" >> "$ALONE"
  stop_pid "$spid"
done

python3 - "$RESULTS" "$INPROC" "$EVENTS" "$CONTACTS" "$ALONE" <<'EOF'
import json, statistics, sys
res, inproc, ne, nc, alone = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
n = ne + nc
rows = [l.rstrip("\n").split("\t") for l in open(res) if l.strip()]
def med(tool, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == tool)
def cpu(tool):
    return statistics.median(float(r[3]) + float(r[4]) for r in rows if r[0] == tool)
ip = [json.loads(l) for l in open(inproc) if l.strip()]
print(f"objects: {n} ({ne} events + {nc} contacts), runs: {len([r for r in rows if r[0]=='zxmigrate'])}, medians")
print("| figure | vdirsyncer | zxmigrate |")
print("|---|---|---|")
print(f"| (1) wall time, Radicale -> Radicale | {med('vdirsyncer',2):.1f} s | {med('zxmigrate',2):.1f} s |")
print(f"| destination Radicale CPU during the copy | {med('vdirsyncer',5):.1f} s | {med('zxmigrate',5):.1f} s |")
print(f"| (2) client CPU per object (user+sys) | {cpu('vdirsyncer')/n*1000:.2f} ms | {cpu('zxmigrate')/n*1000:.2f} ms |")
al = [l.split() for l in open(alone) if l.strip()]
print(f"| (2b) client alone vs go-webdav in another process: CPU per object | - | {statistics.median((float(a[1])+float(a[2])) for a in al)/n*1000:.2f} ms |")
print(f"| (2b) same, wall time | - | {statistics.median(float(a[0]) for a in al):.1f} s |")
print(f"| (3) objects/s, in-process go-webdav pair | - | {statistics.median(x['objects_per_second'] for x in ip):.0f} |")
def mix(tool):
    return next((r[7] for r in rows if r[0] == tool and len(r) > 7), "")
print(f"| destination requests by method, first run (with the startup and count PROPFINDs) | {mix('vdirsyncer')} | {mix('zxmigrate')} |")
print(f"| objects at destination (want {n}) | {min(int(r[6]) for r in rows if r[0]=='vdirsyncer')} | {min(int(r[6]) for r in rows if r[0]=='zxmigrate')} |")
EOF
