#!/usr/bin/env bash
# Split-writes benchmark: a warm app that sends a response's headers and its
# body in two writes (Python's http.server, as examples/python-web does).
#
# With Nagle's algorithm on the app's side, the body waits for the ACK of the
# headers; a client on a kept-alive connection that delays its ACKs (Linux
# does, for up to 40 ms) holds every response up. rouse re-arms TCP_QUICKACK
# on its upstream connections; this script shows what that is worth against
# nginx proxy_pass (upstream keepalive) to the same warm process, and what a
# keep-alive client talking to the app directly sees.
#
# Usage: bash bench/split-writes.sh
# Settings (environment): DURATION=5s CONNS="1 8" BENCH_PORT_BASE=28280
#   LOAD_MAX=1.0 LOAD_WAIT=180 NO_RECORD=1 KEEP_TMP=1 ROUSE_BIN=path (skip build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COMMAND=$(bench_command split-writes.sh DURATION CONNS BENCH_PORT_BASE)
DURATION=${DURATION:-5s}
CONNS=${CONNS:-"1 8"}
PORT_BASE=${BENCH_PORT_BASE:-28280}
UP_PORT=$((PORT_BASE + 1))
NGX_PORT=$((PORT_BASE + 2))
GW_PORT=$((PORT_BASE + 3))
ADMIN_PORT=$((PORT_BASE + 4))

bench_need wrk:wrk nginx:nginx python3:python3 curl:curl bc:bc
bench_build
bench_ports_free "$UP_PORT" "$NGX_PORT" "$GW_PORT" "$ADMIN_PORT"
bench_setup
T=$BENCH_TMP

# The upstream: the python-web example, unmodified, on a fixed port so that
# nginx can reach the same warm process rouse proxies to.
mkdir -p "$T/app"
cp "$BENCH_ROOT/examples/python-web/app.py" "$T/app/"
cat >"$T/app/rouse.yaml" <<EOF
service: bench
functions:
  py:
    web:
      command: ["python3", "-u", "app.py"]
      port: $UP_PORT
    concurrency: 1000
    scaling: { idleTimeout: 86400, maxLifetime: 86400, maxInstances: 1 }
    events:
      - http: { path: "/{proxy+}", method: any }
EOF

mkdir -p "$T/proxy"
bench_nginx_proxy_conf 1 "$NGX_PORT" "$UP_PORT" >"$T/proxy/nginx.conf"

cat >"$T/report.lua" <<'EOF'
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.status + summary.errors.timeout))
end
EOF

bench_start_rouse "$GW_PORT" "$ADMIN_PORT"
"$ROUSE_BIN" deploy "$T/app" >"$T/deploy.log" 2>&1 || { cat "$T/deploy.log" >&2; bench_die "deploy failed"; }
curl -sf -o /dev/null "http://127.0.0.1:$GW_PORT/warm" || bench_die "first request through rouse failed (see $T/rouse.log)"
nginx -p "$T/proxy" -c nginx.conf -e stderr >"$T/proxy.log" 2>&1 &
bench_track "$!" QUIT "nginx proxy"
bench_wait_port "$NGX_PORT"
curl -sf -o /dev/null "http://127.0.0.1:$NGX_PORT/warm" || bench_die "first request through nginx failed"

bench_wait_for_quiet
OUT="$T/table.txt"
{
  echo "warm requests to examples/python-web (headers and body in two writes); wrk, $DURATION per cell"
  echo
  printf '%-7s %5s %9s %9s %9s %6s\n' path conns rps p50_ms p99_ms errors
} >"$OUT"
declare -A P50
for c in $CONNS; do
  for name in direct nginx rouse; do
    case $name in direct) port=$UP_PORT ;; nginx) port=$NGX_PORT ;; rouse) port=$GW_PORT ;; esac
    line=$(wrk -t1 -c"$c" -d"$DURATION" -s "$T/report.lua" "http://127.0.0.1:$port/x" 2>&1 | grep '^RESULT' || echo "RESULT requests=0 p50_us=0 p99_us=0 errors=-1")
    eval "${line#RESULT }"
    secs=${DURATION%s}
    P50[$name$c]=$p50_us
    printf '%-7s %5s %9.0f %9.3f %9.3f %6s\n' "$name" "$c" "$(echo "$requests / $secs" | bc -l)" \
      "$(echo "$p50_us / 1000" | bc -l)" "$(echo "$p99_us / 1000" | bc -l)" "$errors" >>"$OUT"
  done
done
{
  echo
  for c in $CONNS; do
    printf 'conns %s: p50 nginx / rouse = %.1f\n' "$c" "$(echo "${P50[nginx$c]} / ${P50[rouse$c]}" | bc -l)"
  done
} >>"$OUT"
cat "$OUT"
[ -n "${NO_RECORD:-}" ] || bench_record "split-writes" "$COMMAND" "$OUT"
