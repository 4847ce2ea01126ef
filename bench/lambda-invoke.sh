#!/usr/bin/env bash
# Warm lambda invoke latency through the gateway vs the web path, same logic.
#
# Two functions answer GET /{id} with the same small JSON document:
#   lambda  the Rust example on the official `lambda_runtime` crate
#           (provided.al2023), behind an `httpApi` route: HTTP → API Gateway
#           v2 event → Runtime API → handler → response → HTTP
#   web     stock nginx returning the same JSON, proxied as a web function
# Both are warmed first; wrk then measures each at 1 and 8 connections
# (8 warm lambda instances, since a lambda instance takes one request at a
# time). Prints p50/p99/rps and the lambda/web p50 ratio (goal <= 1.5).
#
# Usage: bash bench/lambda-invoke.sh
# Settings: DURATION=10s CONNS="1 8" BENCH_PORT_BASE=28480 LOAD_MAX=1.0
#   LOAD_WAIT=180 NO_RECORD=1 KEEP_TMP=1 ROUSE_BIN=path (skip the rouse build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COMMAND=$(bench_command lambda-invoke.sh DURATION CONNS BENCH_PORT_BASE)
DURATION=${DURATION:-10s}
CONNS=${CONNS:-"1 8"}
PORT_BASE=${BENCH_PORT_BASE:-28480}
WEB_PORT=$((PORT_BASE + 1))
GW_PORT=$((PORT_BASE + 2))
ADMIN_PORT=$((PORT_BASE + 3))

bench_need wrk:wrk nginx:nginx curl:curl python3:python3
bench_build
bench_log "cargo build --release -p rust-lambda-example"
(cd "$BENCH_ROOT" && cargo build --release -p rust-lambda-example --quiet) || bench_die "build failed"
BOOTSTRAP=$BENCH_ROOT/target/release/bootstrap
[ -x "$BOOTSTRAP" ] || bench_die "$BOOTSTRAP missing after build"
bench_ports_free "$WEB_PORT" "$GW_PORT" "$ADMIN_PORT"
bench_setup
T=$BENCH_TMP

# --- the lambda function -------------------------------------------------------
mkdir -p "$T/lambda"
cp "$BOOTSTRAP" "$T/lambda/bootstrap"
cat >"$T/lambda/rouse.yaml" <<EOF
service: bench
functions:
  fn:
    runtime: provided.al2023
    handler: bootstrap
    memorySize: 128
    timeout: 10
    scaling: { idleTimeout: 86400, maxInstances: 16 }
    events:
      - httpApi: { path: "/lambda/{id}", method: get }
EOF

# --- the web function with the same answer -------------------------------------
mkdir -p "$T/web"
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
service: benchweb
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

cat >"$T/report.lua" <<'EOF'
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
end
EOF

bench_start_rouse "$GW_PORT" "$ADMIN_PORT"
"$ROUSE_BIN" deploy "$T/lambda" >"$T/deploy.log" 2>&1 || { cat "$T/deploy.log" >&2; bench_die "deploy failed"; }
"$ROUSE_BIN" deploy "$T/web" >>"$T/deploy.log" 2>&1 || { cat "$T/deploy.log" >&2; bench_die "deploy failed"; }
LAMBDA_URL="http://127.0.0.1:$GW_PORT/lambda/42"
WEB_URL="http://127.0.0.1:$GW_PORT/web/42"
curl -sf "$LAMBDA_URL" >"$T/lambda.out" || bench_die "lambda call failed (see $T/rouse.log)"
curl -sf "$WEB_URL" >"$T/web.out" || bench_die "web call failed"
bench_log "lambda answers: $(head -c 200 "$T/lambda.out")"
bench_log "web answers:    $(cat "$T/web.out")"
BENCH_GROUPS="$(bench_instance_pids fn | tr '\n' ' ')"

measure() { # url conns -> "p50_us p99_us rps errors"
  wrk -t1 -c"$2" -d"$DURATION" -s "$T/report.lua" "$1" | awk '/^RESULT/ {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "%d %d %.0f %d\n", v["p50_us"], v["p99_us"], v["requests"] / (v["duration_us"] / 1e6), v["errors"] }'
}

bench_wait_for_quiet
{
  printf '%-6s %-7s %9s %9s %9s %7s\n' conns path p50_us p99_us rps errors
  for c in $CONNS; do
    # Warm as many lambda instances as connections, then measure both paths.
    wrk -t1 -c"$c" -d2s "$LAMBDA_URL" >/dev/null
    read -r lp50 lp99 lrps lerr < <(measure "$LAMBDA_URL" "$c")
    read -r wp50 wp99 wrps werr < <(measure "$WEB_URL" "$c")
    printf '%-6s %-7s %9s %9s %9s %7s\n' "$c" lambda "$lp50" "$lp99" "$lrps" "$lerr"
    printf '%-6s %-7s %9s %9s %9s %7s\n' "$c" web "$wp50" "$wp99" "$wrps" "$werr"
    awk -v l="$lp50" -v w="$wp50" -v c="$c" 'BEGIN {
      printf "c=%s lambda/web p50 = %.2f (goal <= 1.5)\n", c, (w > 0 ? l / w : 0) }'
  done
} | tee "$T/table.txt"

if [ -z "${NO_RECORD:-}" ]; then
  bench_record "lambda invoke vs web, warm" "$COMMAND" "$T/table.txt"
fi
