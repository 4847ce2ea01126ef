#!/usr/bin/env bash
# Per-invoke cost of the lambda path in numbers that do not depend on how
# busy the machine is: instructions (callgrind), heap allocations (calls to
# malloc/calloc/realloc counted by callgrind) and syscalls (strace -f -c) of
# the rouse process, per request, for
#   web      GET through the gateway to nginx (the reference)
#   rust     GET on an httpApi route to the official `lambda_runtime` example
#   python   GET on an httpApi route to a python3 echo handler
#   invoke   POST to the Invoke API of the same python function
# Each case: warm-up, then N requests over one keep-alive connection (curl),
# counted between `callgrind_control --zero` and `--dump` (pass 1, rouse under
# valgrind) and between attaching and detaching strace (pass 2, rouse native).
# The counts cover the whole rouse process (gateway, pool, Runtime API server,
# log writer), not the instance; the per-layer split comes from callgrind's
# inclusive costs (CALLGRIND_KEEP=1 keeps the dumps for callgrind_annotate).
#
# Usage: bash bench/lambda-profile.sh
# Settings: N=300 BENCH_PORT_BASE=28500 ROUSE_BIN=path (skip the build)
#   NO_RECORD=1 KEEP_TMP=1 CALLGRIND_KEEP=1
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COMMAND=$(bench_command lambda-profile.sh N BENCH_PORT_BASE)
N=${N:-300}
PORT_BASE=${BENCH_PORT_BASE:-28500}
WEB_PORT=$((PORT_BASE + 1))
GW_PORT=$((PORT_BASE + 2))
ADMIN_PORT=$((PORT_BASE + 3))

bench_need valgrind:valgrind strace:strace nginx:nginx curl:curl python3:python3
bench_build
bench_log "cargo build --release -p rust-lambda-example"
(cd "$BENCH_ROOT" && cargo build --release -p rust-lambda-example --quiet) || bench_die "build failed"
BOOTSTRAP=$BENCH_ROOT/target/release/bootstrap
bench_ports_free "$WEB_PORT" "$GW_PORT" "$ADMIN_PORT"
bench_setup
T=$BENCH_TMP

mkdir -p "$T/rust" "$T/web"
cp "$BOOTSTRAP" "$T/rust/bootstrap"
cat >"$T/rust/rouse.yaml" <<EOF
service: prof
functions:
  rs:
    runtime: provided.al2023
    handler: bootstrap
    timeout: 60
    scaling: { idleTimeout: 86400, maxInstances: 1 }
    events:
      - httpApi: { path: "/rust/{id}", method: get }
  py:
    runtime: python3.11
    handler: app.handler
    timeout: 60
    scaling: { idleTimeout: 86400, maxInstances: 1 }
    events:
      - httpApi: { path: "/py/{id}", method: get }
EOF
cat >"$T/rust/app.py" <<'EOF'
def handler(event, context):
    if "requestContext" in event:
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": '{"message":"hello","id":"42"}'}
    return event
EOF
{
  bench_nginx_preamble 1 1024
  cat <<EOF
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$WEB_PORT;
        location /web/ {
            default_type application/json;
            return 200 '{"message":"hello","id":"42"}';
        }
    }
}
EOF
} >"$T/web/nginx.conf"
cat >"$T/web/rouse.yaml" <<EOF
service: profweb
functions:
  fn:
    web:
      command: ["nginx", "-p", ".", "-c", "nginx.conf"]
      port: $WEB_PORT
    concurrency: 1000
    scaling: { idleTimeout: 86400, maxInstances: 1 }
    events:
      - http: { path: "/web/{id}", method: get }
EOF

G="http://127.0.0.1:$GW_PORT"
INVOKE_URL="$G/2015-03-31/functions/prof-dev-py/invocations"
# curl config: COUNT requests of one case over one connection.
requests() { # case count
  local i
  for ((i = 0; i < $2; i++)); do
    case $1 in
      web) echo "url = \"$G/web/42\"" ;;
      rust) echo "url = \"$G/rust/42\"" ;;
      python) echo "url = \"$G/py/42\"" ;;
      invoke) printf 'url = "%s"\ndata = "{\\"k\\":1}"\n' "$INVOKE_URL" ;;
    esac
    echo 'output = "/dev/null"'
    # Options (the POST body) apply to one request each.
    if ((i + 1 < $2)); then echo next; fi
  done
}
run_case() { # case count
  requests "$1" "$2" >"$T/curl.cfg"
  curl -sf --config "$T/curl.cfg" || bench_die "$1 requests failed (see $T/rouse.log)"
}
CASES="web rust python invoke"

start_rouse() { # [wrapper command...]
  ROUSE_ADMIN_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  export ROUSE_ADMIN_TOKEN ROUSE_ENDPOINT="http://127.0.0.1:$ADMIN_PORT"
  rm -rf "$T/rouse-data"
  RUST_LOG=warn "$@" "$ROUSE_BIN" serve --aws-auth open \
    --listen "127.0.0.1:$GW_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
    --data-dir "$T/rouse-data" >"$T/rouse.log" 2>&1 &
  ROUSE_PID=$!
  bench_track "$ROUSE_PID" TERM rouse
  bench_wait_port "$ADMIN_PORT" 600
  bench_wait_port "$GW_PORT" 600
  "$ROUSE_BIN" deploy "$T/rust" >"$T/deploy.log" 2>&1 || { cat "$T/deploy.log" >&2; bench_die "deploy failed"; }
  "$ROUSE_BIN" deploy "$T/web" >>"$T/deploy.log" 2>&1 || { cat "$T/deploy.log" >&2; bench_die "deploy failed"; }
  for c in $CASES; do run_case "$c" 20; done
}
stop_rouse() {
  kill -TERM "$ROUSE_PID" 2>/dev/null || true
  wait "$ROUSE_PID" 2>/dev/null || true
}

# --- pass 1: instructions and allocations (callgrind) -------------------------
bench_log "pass 1: rouse under callgrind (slow start)"
start_rouse valgrind --tool=callgrind --callgrind-out-file="$T/cg.boot" --trace-children=no
# The valgrind process is rouse itself (valgrind execs nothing else).
count_allocs() { # callgrind dump -> calls to the C allocator
  python3 - "$1" <<'EOF'
import re, sys
names, current, total = {}, None, 0
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line)
    if m:
        if m.group(2):
            names[m.group(1)] = m.group(2).strip()
        current = names.get(m.group(1), "")
        continue
    m = re.match(r"c?fn=\((\d+)\) (.*)", line)
    if m:
        names[m.group(1)] = m.group(2).strip()
    if line.startswith("calls=") and current in ("malloc", "calloc", "realloc"):
        total += int(line.split("=")[1].split()[0])
        current = None
print(total)
EOF
}
declare -A IR ALLOC SYS
for c in $CASES; do
  callgrind_control --zero "$ROUSE_PID" >/dev/null
  run_case "$c" "$N"
  callgrind_control --dump="$c" "$ROUSE_PID" >/dev/null
  sleep 1
  dump=$(ls -t "$T"/cg.boot.* 2>/dev/null | head -1)
  [ -n "$dump" ] || bench_die "no callgrind dump for $c"
  mv "$dump" "$T/cg.$c"
  IR[$c]=$(awk '/^summary:/ {print $2}' "$T/cg.$c")
  ALLOC[$c]=$(count_allocs "$T/cg.$c")
done
stop_rouse

# --- pass 2: syscalls (strace) -------------------------------------------------
bench_log "pass 2: syscalls with strace -f -c"
start_rouse
for c in $CASES; do
  strace -f -c -o "$T/strace.$c" -p "$ROUSE_PID" 2>/dev/null &
  STRACE_PID=$!
  sleep 1
  run_case "$c" "$N"
  kill -INT "$STRACE_PID"
  wait "$STRACE_PID" 2>/dev/null || true
  SYS[$c]=$(awk '$NF == "total" {print $4}' "$T/strace.$c")
done
stop_rouse

{
  printf '%-8s %12s %10s %10s\n' case instr/req allocs/req syscalls/req
  for c in $CASES; do
    awk -v c="$c" -v n="$N" -v ir="${IR[$c]}" -v al="${ALLOC[$c]}" -v sc="${SYS[$c]}" 'BEGIN {
      printf "%-8s %12.0f %10.1f %10.1f\n", c, ir / n, al / n, sc / n }'
  done
  awk -v r="${IR[rust]}" -v w="${IR[web]}" 'BEGIN { printf "rust/web instructions = %.2f\n", r / w }'
  for c in $CASES; do echo "top syscalls ($c):"; awk -v n="$N" 'NR > 2 && $NF != "total" && $1 !~ /^-/ { printf "  %-16s %6.2f\n", $NF, $4 / n }' "$T/strace.$c" | sort -k2 -nr | head -8; done
} | tee "$T/table.txt"

if [ -n "${CALLGRIND_KEEP:-}" ]; then
  mkdir -p "$BENCH_ROOT/target/lambda-profile"
  cp "$T"/cg.web "$T"/cg.rust "$T"/cg.python "$T"/cg.invoke "$T"/strace.* "$BENCH_ROOT/target/lambda-profile/"
  bench_log "callgrind dumps and strace tables in target/lambda-profile/"
fi
if [ -z "${NO_RECORD:-}" ]; then
  bench_record "lambda per-invoke profile (callgrind, strace)" "$COMMAND" "$T/table.txt"
fi
