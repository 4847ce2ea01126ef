# Shared helpers for the benchmark scripts in bench/. Sourced, not run.
#
# Conventions: everything listens on 127.0.0.1 only; every process a script
# starts is recorded (bench_track PID) and stopped by bench_cleanup on EXIT;
# every load run is bounded in time.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Set ROUSE_BIN to benchmark an already built binary (skips the build).
BENCH_PREBUILT=${ROUSE_BIN:+1}
ROUSE_BIN=${ROUSE_BIN:-$BENCH_ROOT/target/release/rouse}
BENCH_TRACKED=()        # "pid:signal:label" of processes to stop, in order
BENCH_TMP=""

bench_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() { bench_log "error: $*"; exit 1; }

# Installs missing Debian packages (as root, or with sudo).
# Usage: bench_need CMD:PACKAGE ...
bench_need() {
  local pkgs=() spec
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null 2>&1 || pkgs+=("${spec#*:}")
  done
  [ ${#pkgs[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  bench_log "installing ${pkgs[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
}

bench_build() {
  if [ -n "$BENCH_PREBUILT" ]; then
    [ -x "$ROUSE_BIN" ] || bench_die "ROUSE_BIN=$ROUSE_BIN is not executable"
    bench_log "using ROUSE_BIN=$ROUSE_BIN (no build)"
    return
  fi
  bench_log "cargo build --release -p rouse-cli"
  (cd "$BENCH_ROOT" && cargo build --release -p rouse-cli --quiet) || bench_die "build failed"
  [ -x "$ROUSE_BIN" ] || bench_die "$ROUSE_BIN missing after build"
}

# Fails if any of the given TCP ports already has a listener on this machine.
# Scripts use ports below 32768, outside Linux's default ephemeral range, so
# that no client connection (ours or anyone's) holds them as a source port.
bench_ports_free() {
  local port
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      bench_die "port $port is in use; set BENCH_PORT_BASE to another range"
    fi
  done
}

# Waits until something accepts on 127.0.0.1:PORT (up to SECONDS, default 20).
bench_wait_port() {
  local port=$1 limit=${2:-20} i
  for ((i = 0; i < limit * 20; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  bench_die "nothing listening on 127.0.0.1:$port after ${limit}s"
}

# Waits (up to LOAD_WAIT seconds, default 180) for the 1-minute load average
# to drop below LOAD_MAX (default 1.0): other work on a 2-core machine skews
# every number. Runs anyway afterwards; the load is recorded either way.
bench_wait_for_quiet() {
  local max=${LOAD_MAX:-1.0} wait=${LOAD_WAIT:-180} waited=0 load
  while :; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    if awk -v l="$load" -v m="$max" 'BEGIN { exit !(l < m) }'; then
      break
    fi
    if [ "$waited" -ge "$wait" ]; then
      bench_log "load average still $load after ${waited}s (LOAD_MAX=$max); measuring anyway"
      break
    fi
    bench_log "load average $load >= $max; waiting (${waited}/${wait}s)"
    sleep 10
    waited=$((waited + 10))
  done
  BENCH_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
}

# The part every nginx config in these benchmarks shares: foreground, logs to
# stderr, pid and temp files in /tmp (the one place an isolated instance may
# write), access log off. Prints
# up to and including the opening of the `http {` block; the caller adds the
# rest and the closing brace.
# Usage: { bench_nginx_preamble WORKERS CONNECTIONS; cat <<EOF ...; } >nginx.conf
bench_nginx_preamble() {
  cat <<PREAMBLE
worker_processes $1;
daemon off;
error_log stderr warn;
pid /tmp/nginx.pid;
events { worker_connections $2; }
http {
    access_log off;
    client_body_temp_path /tmp/nginx_client_body;
    proxy_temp_path /tmp/nginx_proxy;
    fastcgi_temp_path /tmp/nginx_fastcgi;
    uwsgi_temp_path /tmp/nginx_uwsgi;
    scgi_temp_path /tmp/nginx_scgi;
PREAMBLE
}

# An nginx `proxy_pass` config (upstream keep-alive, HTTP/1.1) listening on
# PORT and proxying to 127.0.0.1:UPSTREAM_PORT, the reference rouse's gateway
# is measured against.
# Usage: bench_nginx_proxy_conf WORKERS PORT UPSTREAM_PORT >nginx.conf
bench_nginx_proxy_conf() {
  local workers=$1 port=$2 upstream=$3
  bench_nginx_preamble "$workers" 4096
  cat <<EOF
    keepalive_timeout 65;
    keepalive_requests 1000000;
    upstream app {
        server 127.0.0.1:$upstream;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
}

bench_track() { BENCH_TRACKED+=("$1:$2:$3"); }

# True while PID runs (a zombie child waiting to be reaped does not count).
bench_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]
}

# Stops a pid with SIGNAL, waits up to 15 s, then SIGKILLs it.
bench_stop_pid() {
  local pid=$1 sig=$2 label=$3 i
  if bench_alive "$pid"; then
    kill "-$sig" "$pid" 2>/dev/null
    for ((i = 0; i < 300; i++)); do
      bench_alive "$pid" || break
      sleep 0.05
    done
    if bench_alive "$pid"; then
      bench_log "$label (pid $pid) ignored SIG$sig for 15 s; killing"
      kill -KILL "$pid" 2>/dev/null
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

# Stops tracked processes in reverse start order, then removes the scratch dir.
bench_cleanup() {
  local rc=$? i entry pid sig label
  set +e
  trap - EXIT INT TERM
  for ((i = ${#BENCH_TRACKED[@]} - 1; i >= 0; i--)); do
    entry=${BENCH_TRACKED[$i]}
    pid=${entry%%:*}; entry=${entry#*:}
    sig=${entry%%:*}; label=${entry#*:}
    bench_stop_pid "$pid" "$sig" "$label"
  done
  # Instances rouse started are their own process groups; if rouse died
  # without stopping them, end those groups too.
  # Files holding the process group of something started outside our
  # tracking (e.g. by a harness that was interrupted).
  local f
  for f in ${BENCH_GROUP_FILES:-}; do
    [ -s "$f" ] && BENCH_GROUPS="${BENCH_GROUPS:-} $(cat "$f")"
  done
  for pid in ${BENCH_GROUPS:-}; do
    if kill -0 "-$pid" 2>/dev/null; then
      bench_log "process group $pid outlived the benchmark; killing it"
      kill -KILL "-$pid" 2>/dev/null
    fi
  done
  if [ -n "$BENCH_TMP" ] && [ -d "$BENCH_TMP" ]; then
    if [ -n "${KEEP_TMP:-}" ]; then
      bench_log "scratch dir kept: $BENCH_TMP"
    else
      rm -rf "$BENCH_TMP"
    fi
  fi
  exit "$rc"
}

# One benchmark at a time on this machine: scripts sourcing this file take
# a machine-wide lock before they start anything (released when they exit),
# so two people's benchmarks do not measure each other.
BENCH_LOCK=${BENCH_LOCK:-/tmp/rouse-bench.lock}
bench_lock() {
  local wait=${BENCH_LOCK_WAIT:-1800}
  command -v flock >/dev/null 2>&1 || { bench_log "no flock; running without the machine-wide lock"; return 0; }
  exec {BENCH_LOCK_FD}>>"$BENCH_LOCK"
  if ! flock -n "$BENCH_LOCK_FD"; then
    bench_log "another benchmark holds $BENCH_LOCK; waiting up to ${wait}s"
    flock -w "$wait" "$BENCH_LOCK_FD" || bench_die "lock $BENCH_LOCK still held after ${wait}s"
  fi
}

bench_setup() {
  bench_lock
  BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/rouse-bench.XXXXXX")
  # nginx workers drop to `nobody`; they must be able to reach files below.
  chmod 755 "$BENCH_TMP"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# Starts `rouse serve` on GW_PORT/ADMIN_PORT (plus any further serve flags)
# with a private data dir, and exports ROUSE_ENDPOINT / ROUSE_ADMIN_TOKEN for
# the CLI.
bench_start_rouse() {
  local gw=$1 admin=$2
  shift 2
  ROUSE_ADMIN_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  export ROUSE_ADMIN_TOKEN
  export ROUSE_ENDPOINT="http://127.0.0.1:$admin"
  RUST_LOG=${RUST_LOG:-warn} "$ROUSE_BIN" serve \
    --listen "127.0.0.1:$gw" --admin-listen "127.0.0.1:$admin" \
    --data-dir "$BENCH_TMP/rouse-data" "$@" >"$BENCH_TMP/rouse.log" 2>&1 &
  ROUSE_PID=$!
  bench_track "$ROUSE_PID" TERM rouse
  bench_wait_port "$admin"
  bench_wait_port "$gw"
}

# Pids of the live instances of FUNCTION, from `rouse ls --output json`.
bench_instance_pids() {
  "$ROUSE_BIN" ls --output json | python3 -c '
import json, sys
name = sys.argv[1]
data = json.load(sys.stdin)
fns = data["functions"] if isinstance(data, dict) and "functions" in data else data
for f in fns:
    if f.get("name") == name or f.get("name", "").endswith("-" + name):
        for i in f.get("instances", []):
            print(i["pid"])
' "$1"
}

# Appends a titled section to bench/RESULTS.md.
# Usage: bench_record TITLE COMMAND BODY_FILE
bench_record() {
  local title=$1 cmd=$2 body=$3 out="$BENCH_ROOT/bench/RESULTS.md"
  [ -f "$out" ] || printf '# Benchmark results\n\nAppended by the scripts in bench/; newest last.\n' >"$out"
  {
    printf '\n## %s — %s\n\n' "$title" "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    printf -- '- command: `%s`\n' "$cmd"
    printf -- '- machine: nproc %s, kernel %s, %s\n' "$(nproc)" "$(uname -r)" "$(uname -m)"
    printf -- '- load average at start: %s; at end: %s\n' "$BENCH_LOAD_START" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf -- '- rouse: commit %s (tree %s)\n' "$(cd "$BENCH_ROOT" && git describe --always --dirty 2>/dev/null || echo unknown)" "$BENCH_ROOT"
    printf '\n```\n'
    cat "$body"
    printf '```\n'
  } >>"$out"
  bench_log "appended to $out"
}

# The command line as given, with the settings set in the environment.
# Call it before the script fills in its defaults.
bench_command() {
  local script=$1; shift
  local env="" v
  for v in "$@"; do
    if [ -n "${!v:-}" ]; then env+="$v=$(printf '%q' "${!v}") "; fi
  done
  printf '%sbash bench/%s' "$env" "$script"
}
