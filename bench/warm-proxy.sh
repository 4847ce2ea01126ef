#!/usr/bin/env bash
# Warm web-proxy benchmark: rouse's gateway vs nginx proxy_pass, same upstream.
#
# One upstream process — stock nginx answering `return 200` at /small and a
# 64 KB static file at /64k — is deployed to rouse as a web function with a
# fixed `web.port` and a long idleTimeout, so it stays the one warm instance.
# wrk then measures, for each connection count, three paths to it:
#   direct  wrk → upstream (the ceiling)
#   nginx   wrk → nginx proxy_pass (upstream keepalive 64, HTTP/1.1) → upstream
#   rouse   wrk → rouse gateway → upstream
# and prints rps / p50 / p99 per cell, the rouse/nginx ratios, and the CPU
# each proxy spent per request. The result is appended to bench/RESULTS.md.
#
# Usage: bash bench/warm-proxy.sh     (from anywhere; root or sudo for apt)
# Takes about 10 minutes with the defaults (18 cells x 3 rounds x 11 s).
# Settings (environment): DURATION=10s WARMUP=1s CONNS="1 32 256" ROUNDS=3
#   (rounds rotate the order of the three paths; the table shows the median)
#   PROXY_WORKERS=2 (nginx proxy workers) ROUSE_THREADS= (TOKIO_WORKER_THREADS
#   for rouse; default: one per core) BENCH_PORT_BASE=28180 LOAD_MAX=1.0 LOAD_WAIT=180
#   NO_RECORD=1 (do not append to RESULTS.md) KEEP_TMP=1 ROUSE_BIN=path (skip build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COMMAND=$(bench_command warm-proxy.sh DURATION WARMUP CONNS ROUNDS PROXY_WORKERS ROUSE_THREADS BENCH_PORT_BASE)
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-1s}
CONNS=${CONNS:-"1 32 256"}
ROUNDS=${ROUNDS:-3}
ROUSE_THREADS=${ROUSE_THREADS:-}
PROXY_WORKERS=${PROXY_WORKERS:-2}
PORT_BASE=${BENCH_PORT_BASE:-28180}
UP_PORT=$((PORT_BASE + 1))
NGX_PORT=$((PORT_BASE + 2))
GW_PORT=$((PORT_BASE + 3))
ADMIN_PORT=$((PORT_BASE + 4))

bench_need wrk:wrk nginx:nginx python3:python3 curl:curl
bench_build
bench_ports_free "$UP_PORT" "$NGX_PORT" "$GW_PORT" "$ADMIN_PORT"
bench_setup
T=$BENCH_TMP

# --- the upstream: a rouse web function running stock nginx -----------------
mkdir -p "$T/app/www"
head -c 65536 /dev/zero | tr '\0' 'x' >"$T/app/www/64k"
{
  bench_nginx_preamble 1 4096
  cat <<EOF
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$UP_PORT backlog=4096;
        root www;
        location = /small { default_type text/plain; return 200 "hello from the upstream\n"; }
        location = /64k { }
    }
}
EOF
} >"$T/app/nginx.conf"
cat >"$T/app/rouse.yaml" <<EOF
service: bench
functions:
  upstream:
    web:
      command: ["nginx", "-p", ".", "-c", "nginx.conf"]
      port: $UP_PORT
    concurrency: 100000
    timeout: 60
    scaling: { idleTimeout: 86400, maxLifetime: 86400, maxInstances: 1 }
    events:
      - http: { path: "/{proxy+}", method: any }
EOF

# --- the nginx proxy under test ---------------------------------------------
mkdir -p "$T/proxy"
bench_nginx_proxy_conf "$PROXY_WORKERS" "$NGX_PORT" "$UP_PORT" >"$T/proxy/nginx.conf"

# wrk reports exact percentiles (µs) and error counts through this script.
cat >"$T/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d max_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.status + e.timeout, e.status))
end
EOF

# CPU accounting, so a cell run while someone else compiled shows up as such.
# Prints: total_busy total_all wrk(reaped children of this shell) rouse upstream proxy   (clock ticks)
cat >"$T/cpu.py" <<'EOF'
import os, sys
shell, rouse, proxy = (int(a) for a in sys.argv[1:4])
def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()
procs = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            procs[int(d)] = stat(d)
        except OSError:
            pass
children = {}
for pid, f in procs.items():
    children.setdefault(int(f[1]), []).append(pid)
def tree(root, include_root=True):
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if p in procs:
            out.append(p)
            todo.extend(children.get(p, []))
    return out if include_root else [p for p in out if p != root]
def ticks(pids):
    return sum(int(procs[p][11]) + int(procs[p][12]) for p in pids if p in procs)
with open("/proc/stat") as f:
    cpu = [int(x) for x in f.readline().split()[1:]]
total = sum(cpu[:8])
busy = total - cpu[3] - cpu[4]
sh = procs.get(shell)
reaped = int(sh[13]) + int(sh[14]) if sh else 0
print(busy, total, reaped, ticks([rouse]) if rouse else 0,
      ticks(tree(rouse, False)) if rouse else 0, ticks(tree(proxy)) if proxy else 0)
EOF

# --- start everything ---------------------------------------------------------
if [ -n "$ROUSE_THREADS" ]; then export TOKIO_WORKER_THREADS=$ROUSE_THREADS; fi
bench_start_rouse "$GW_PORT" "$ADMIN_PORT"
unset TOKIO_WORKER_THREADS
"$ROUSE_BIN" deploy "$T/app" >"$T/deploy.log" 2>&1 || { cat "$T/deploy.log" >&2; bench_die "deploy failed"; }
curl -sf -o /dev/null "http://127.0.0.1:$GW_PORT/small" || bench_die "first request through rouse failed (see $T/rouse.log)"
UP_PID=$(bench_instance_pids upstream | head -n1)
[ -n "$UP_PID" ] || bench_die "no upstream instance after the first request"
BENCH_GROUPS="$UP_PID"

nginx -p "$T/proxy" -c nginx.conf -e stderr >"$T/proxy.log" 2>&1 &
NGX_PID=$!
bench_track "$NGX_PID" QUIT "nginx proxy"
bench_wait_port "$NGX_PORT"

for path in small 64k; do
  for target in "$UP_PORT" "$NGX_PORT" "$GW_PORT"; do
    code=$(curl -s -o "$T/check" -w '%{http_code}' "http://127.0.0.1:$target/$path")
    [ "$code" = 200 ] || bench_die "GET :$target/$path answered $code"
    cmp -s "$T/check" <(if [ $path = 64k ]; then cat "$T/app/www/64k"; else echo "hello from the upstream"; fi) ||
      bench_die "GET :$target/$path returned an unexpected body"
  done
done

bench_wait_for_quiet
bench_log "load average at start: $BENCH_LOAD_START"
bench_log "upstream nginx pid $UP_PID on :$UP_PORT; nginx proxy pid $NGX_PID on :$NGX_PORT ($PROXY_WORKERS workers); rouse pid $ROUSE_PID on :$GW_PORT"

# --- measure ------------------------------------------------------------------
RAW="$T/raw.tsv"
: >"$RAW"
run_wrk() { # url conns duration -> RESULT line
  local url=$1 c=$2 d=$3 threads=2
  [ "$c" -lt 2 ] && threads=1 # wrk needs connections >= threads
  wrk -t"$threads" -c"$c" -d"$d" --latency -s "$T/report.lua" "$url" 2>&1 | grep '^RESULT' || echo "RESULT failed=1"
}
ORDER=(direct nginx rouse)
for ((round = 0; round < ROUNDS; round++)); do
  for path in small 64k; do
    for c in $CONNS; do
      for ((k = 0; k < 3; k++)); do
        name=${ORDER[$(((k + round) % 3))]}
        case $name in
          direct) port=$UP_PORT ;;
          nginx) port=$NGX_PORT ;;
          rouse) port=$GW_PORT ;;
        esac
        url="http://127.0.0.1:$port/$path"
        run_wrk "$url" "$c" "$WARMUP" >/dev/null
        before=$(python3 "$T/cpu.py" $$ "$ROUSE_PID" "$NGX_PID")
        result=$(run_wrk "$url" "$c" "$DURATION")
        after=$(python3 "$T/cpu.py" $$ "$ROUSE_PID" "$NGX_PID")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$path" "$c" "$name" "$result" "$before" "$after" >>"$RAW"
        bench_log "round $((round + 1))/$ROUNDS $path c=$c $name: $result"
        if [[ $result != *" errors=0 "* ]]; then
          {
            echo "--- $(date +%T) round $((round + 1)) $path c=$c $name: $result"
            echo "sockets to the upstream port by state:"
            ss -tan "( dport = :$UP_PORT or sport = :$UP_PORT )" 2>/dev/null | awk 'NR > 1 { n[$1]++ } END { for (s in n) print "  " s, n[s] }'
            echo "nginx proxy log (last lines):"; tail -n 5 "$T/proxy.log" | sed 's/^/  /'
            echo "rouse log (last lines):"; tail -n 5 "$T/rouse.log" | sed 's/^/  /'
            echo "rouse platform log (last lines):"; tail -q -n 5 "$T"/rouse-data/logs/*.log 2>/dev/null | sed 's/^/  /'
          } >>"$T/errors.txt"
        fi
      done
    done
  done
done

# --- report ---------------------------------------------------------------------
python3 - "$RAW" "$PROXY_WORKERS" "$(getconf CLK_TCK)" "$ROUSE_THREADS" "$(nproc)" >"$T/table.txt" <<'EOF'
import sys
raw, workers, hz, threads, ncpu = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = {}
for line in open(raw):
    path, conns, name, result, before, after = line.rstrip("\n").split("\t")
    r = dict(kv.split("=") for kv in result.split()[1:])
    b = [int(x) for x in before.split()]
    a = [int(x) for x in after.split()]
    d = [y - x for x, y in zip(b, a)]
    busy, total, wrk, rouse, upstream, proxy = d
    ours = wrk + rouse + upstream + proxy
    r["foreign_pct"] = 100.0 * max(busy - ours, 0) / total if total else 0.0
    n = int(r.get("requests", 0)) or 1
    us_per_tick = 1e6 / hz
    r["proxy_cpu_us"] = {"direct": 0, "nginx": proxy, "rouse": rouse}[name] * us_per_tick / n
    r["upstream_cpu_us"] = upstream * us_per_tick / n
    r["wrk_cpu_us"] = wrk * us_per_tick / n
    rows.setdefault((path, int(conns), name), []).append(r)

def median(xs):
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2

rounds = max(len(v) for v in rows.values())
merged = {}
for key, runs in rows.items():
    # A round where more than 1% of requests failed measured the failure,
    # not the proxy: its numbers are left out (its errors still show).
    ok = [r for r in runs if "failed" not in r and int(r["errors"]) <= 0.01 * max(int(r["requests"]), 1)]
    if not ok:
        merged[key] = {"failed": "1", "errors": sum(int(r.get("errors", 0)) for r in runs)}
        continue
    merged[key] = {
        "rps": median([int(r["requests"]) / (int(r["duration_us"]) / 1e6) for r in ok]),
        "p50_us": median([int(r["p50_us"]) for r in ok]),
        "p99_us": median([int(r["p99_us"]) for r in ok]),
        "errors": sum(int(r.get("errors", 0)) for r in runs),
        "bad_rounds": len(runs) - len(ok),
        "proxy_cpu_us": median([r["proxy_cpu_us"] for r in ok]),
        "foreign_pct": max(r["foreign_pct"] for r in ok),
    }
rows = merged

def rps(r): return r["rps"]
NOISY = 10.0
def ms(us): return f"{int(us) / 1000:.3f}"
out = []
out.append(f"warm proxy, same upstream (stock nginx, 1 worker, access_log off); nginx proxy: worker_processes {workers},")
rt = f"{threads} runtime thread(s) (TOKIO_WORKER_THREADS)" if threads else f"default runtime ({ncpu} threads, one per core)"
out.append(f"upstream keepalive 64, proxy_http_version 1.1, Connection \"\"; rouse: {rt}.")
out.append("wrk -t2 (-t1 at 1 connection) --latency; all on 127.0.0.1; wrk, upstream and proxy share the machine's cores.")
out.append("cpu/req = CPU time of the proxy process(es) per request; other% = CPU used by processes outside this benchmark")
out.append(f"(% of all cores; the worst round). {rounds} round(s) per cell; with several, each value is the median.")
out.append("")
hdr = f"{'path':<6} {'conns':>5} {'via':<7} {'rps':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'cpu/req us':>10} {'other%':>6}"
out.append(hdr)
out.append("-" * len(hdr))
paths = sorted({k[0] for k in rows}, key=lambda p: ["small", "64k"].index(p))
conns = sorted({k[1] for k in rows})
for p in paths:
    for c in conns:
        for name in ("direct", "nginx", "rouse"):
            r = rows.get((p, c, name))
            if r is None or "failed" in r:
                errs = r.get("errors", "?") if r else "?"
                out.append(f"{p:<6} {c:>5} {name:<7} {'failed':>10} {'':>8} {'':>8} {errs:>6}")
                continue
            cpu = f"{r['proxy_cpu_us']:.1f}" if name != "direct" else "-"
            noisy = " *" if r["foreign_pct"] > NOISY else ""
            if r["bad_rounds"]:
                noisy += f" ({r['bad_rounds']} round(s) with errors left out)"
            out.append(f"{p:<6} {c:>5} {name:<7} {rps(r):>10.0f} {ms(r['p50_us']):>8} {ms(r['p99_us']):>8} {r['errors']:>6} {cpu:>10} {r['foreign_pct']:>6.1f}{noisy}")
out.append(f"* other processes took more than {NOISY:.0f}% of the CPU during this cell: treat it with care.")
out.append("")
out.append("rouse / nginx proxy_pass (goal: rps >= 1.20, p99 <= 1.00):")
hdr = f"{'path':<6} {'conns':>5} {'rps ratio':>10} {'p99 ratio':>10} {'p50 ratio':>10} {'cpu/req ratio':>13}  verdict"
out.append(hdr)
out.append("-" * len(hdr))
for p in paths:
    for c in conns:
        n, g = rows.get((p, c, "nginx")), rows.get((p, c, "rouse"))
        if not n or not g or "failed" in n or "failed" in g:
            out.append(f"{p:<6} {c:>5} {'n/a':>10}")
            continue
        rr = rps(g) / rps(n)
        pr = int(g["p99_us"]) / max(int(n["p99_us"]), 1)
        mr = int(g["p50_us"]) / max(int(n["p50_us"]), 1)
        cr = g["proxy_cpu_us"] / n["proxy_cpu_us"] if n["proxy_cpu_us"] else float("nan")
        ok = "meets goal" if rr >= 1.2 and pr <= 1.0 else "misses: " + ", ".join(
            x for x, bad in (("rps", rr < 1.2), ("p99", pr > 1.0)) if bad)
        out.append(f"{p:<6} {c:>5} {rr:>10.2f} {pr:>10.2f} {mr:>10.2f} {cr:>13.2f}  {ok}")
print("\n".join(out))
EOF

if [ -s "$T/errors.txt" ]; then
  { echo; echo "errors seen (diagnostics):"; cat "$T/errors.txt"; } >>"$T/table.txt"
fi
echo
cat "$T/table.txt"
echo
if [ -z "${NO_RECORD:-}" ]; then
  bench_record "warm-proxy" "$COMMAND" "$T/table.txt"
fi
