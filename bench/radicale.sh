# bench/radicale.sh: helpers shared by the DAV benchmark scripts (sourced).
# start_radicale appends to the caller's PIDS array.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start_radicale DIR PORT [LEVEL] -> sets RADICALE_PID. At LEVEL info
# Radicale logs every request, which gives the request mix per tool.
start_radicale() {
  local dir="$1" port="$2" level="${3:-warning}"
  mkdir -p "$dir"
  echo "user1:pass1" > "$dir/users"
  cat > "$dir/config" <<EOF
[server]
hosts = 127.0.0.1:$port
max_connections = 20
max_content_length = 100000000
timeout = 30
[auth]
type = htpasswd
htpasswd_filename = $dir/users
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
filesystem_folder = $dir/collections
[web]
type = none
[logging]
level = $level
EOF
  radicale -C "$dir/config" >>"$dir/radicale.log" 2>&1 &
  RADICALE_PID=$!
  PIDS+=("$RADICALE_PID")
  for _ in $(seq 100); do
    curl -s -o /dev/null -u user1:pass1 -X PROPFIND -H 'Depth: 0' "http://127.0.0.1:$port/user1/" && return 0
    sleep 0.1
  done
  echo "$(basename "$0"): radicale did not start" >&2; exit 1
}
