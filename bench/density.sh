#!/usr/bin/env bash
# Density benchmark: what 10,000 deployed, idle functions cost rouse.
#
# Design goal: 10,000 deployed functions with no traffic hold no instance
# processes and rouse stays within 64 MB RSS; routing to one of them costs
# no more than with a single function deployed.
#
# Phase 1 (one `rouse serve`, fresh data dir): deploy SERVICES manifests of
#   FUNCS functions each (default 10 x 1,000 = 10,000), every one a web
#   function with its own route `/f{i}` running a ~60-line C HTTP server
#   (never started unless called). Each deploy is timed, so work that grows
#   with the number already deployed shows up as later deploys getting slower.
#   Then, after SETTLE seconds: rouse's VmRSS/VmHWM (/proc/PID/status), its
#   threads, the instance processes (children of rouse, and `rouse ls`), and
#   the CPU time rouse spends over IDLE seconds doing nothing (/proc/PID/stat),
#   and how long `rouse ls` takes to page through all of them and to show
#   the first 100.
#   Then one request warms `/f9999` (the last function deployed) and wrk -c1
#   measures its latency.
# Phase 2 (a second `rouse serve`, fresh data dir): the same function alone,
#   same measurements, as the baseline for RSS and latency.
#
# Usage: bash bench/density.sh     (from anywhere; root or sudo for apt)
# Takes about 2-4 minutes with the defaults.
# Settings (environment): SERVICES=10 FUNCS=1000 (functions per service)
#   SETTLE=5 IDLE=10 (seconds) DURATION=10s (wrk per latency run) ROUNDS=3
#   BENCH_PORT_BASE=28580 LOAD_MAX=1.0 LOAD_WAIT=180 NO_RECORD=1 KEEP_TMP=1
#   ROUSE_BIN=path (skip build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COMMAND=$(bench_command density.sh SERVICES FUNCS SETTLE IDLE DURATION ROUNDS BENCH_PORT_BASE)
SERVICES=${SERVICES:-10}
FUNCS=${FUNCS:-1000}
SETTLE=${SETTLE:-5}
IDLE=${IDLE:-10}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
PORT_BASE=${BENCH_PORT_BASE:-28580}
GW_PORT=$((PORT_BASE + 1))
ADMIN_PORT=$((PORT_BASE + 2))
TOTAL=$((SERVICES * FUNCS))
LAST=$((TOTAL - 1))
RSS_GOAL_KB=$((64 * 1024))

bench_need wrk:wrk python3:python3 cc:gcc curl:curl
bench_build
bench_ports_free "$GW_PORT" "$ADMIN_PORT"
bench_setup
T=$BENCH_TMP
HZ=$(getconf CLK_TCK)

# --- the app every function would run -------------------------------------------
cc -O2 -o "$T/tiny" "$BENCH_ROOT/bench/tiny-server.c"

# One directory per service: the binary and a manifest of functions
# f{FIRST}..f{FIRST+COUNT-1}, each with its own route.
make_service() { # dir service first count
  mkdir -p "$1"
  cp "$T/tiny" "$1/tiny"
  python3 - "$2" "$3" "$4" >"$1/rouse.yaml" <<'EOF'
import sys
service, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(f"service: {service}")
print("functions:")
for i in range(first, first + count):
    print(f"  f{i}:")
    print('    web: { command: ["./tiny"] }')
    print("    scaling: { idleTimeout: 3600, maxInstances: 1 }")
    print(f'    events: [ {{ http: {{ path: "/f{i}", method: get }} }} ]')
EOF
}
for ((s = 0; s < SERVICES; s++)); do
  make_service "$T/svc$s" "d$s" $((s * FUNCS)) "$FUNCS"
done
make_service "$T/single" "single" "$LAST" 1

# wrk reports exact percentiles (µs) through this script.
cat >"$T/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
EOF

# --- measurements ---------------------------------------------------------------
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
cpu_ticks() { # utime + stime of PID
  local s
  s=$(cat "/proc/$1/stat")
  s=${s##*) }
  awk '{ print $12 + $13 }' <<<"$s"
}
children() { # processes whose parent is PID
  local n=0 d s
  for d in /proc/[0-9]*; do
    s=$(cat "$d/stat" 2>/dev/null) || continue
    s=${s##*) }
    [ "$(cut -d' ' -f2 <<<"$s")" = "$1" ] && n=$((n + 1))
  done
  echo "$n"
}
ls_counts() { # "functions instances" per `rouse ls`
  "$ROUSE_BIN" ls --output json | python3 -c '
import json, sys
data = json.load(sys.stdin)
fns = data["functions"] if isinstance(data, dict) and "functions" in data else data
print(len(fns), sum(len(f.get("instances", [])) for f in fns))'
}
ls_ms() { # [ARGS]: how long `rouse ls --output json ARGS` takes, in ms
  local t0 t1
  t0=$(date +%s%N)
  "$ROUSE_BIN" ls --output json "$@" >/dev/null
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}
latency() { # LABEL: ROUNDS wrk -c1 runs on /f$LAST, median p50/p99
  local label=$1 r out
  curl -sf -o /dev/null "http://127.0.0.1:$GW_PORT/f$LAST" || bench_die "GET /f$LAST failed ($label; see $T/rouse.log)"
  wrk -t1 -c1 -d1s "http://127.0.0.1:$GW_PORT/f$LAST" >/dev/null 2>&1
  for ((r = 0; r < ROUNDS; r++)); do
    out=$(wrk -t1 -c1 -d"$DURATION" -s "$T/report.lua" "http://127.0.0.1:$GW_PORT/f$LAST" 2>&1 | grep '^RESULT') ||
      bench_die "wrk failed ($label)"
    bench_log "$label round $((r + 1))/$ROUNDS: $out"
    echo "$label $out" >>"$T/latency.txt"
  done
}
# KEY=VALUE lines for one server state, appended to $T/measure.txt.
measure_idle() { # LABEL
  local label=$1 c0 c1 counts
  sleep "$SETTLE"
  counts=$(ls_counts)
  c0=$(cpu_ticks "$ROUSE_PID")
  sleep "$IDLE"
  c1=$(cpu_ticks "$ROUSE_PID")
  {
    echo "$label.functions=${counts% *}"
    echo "$label.instances_ls=${counts#* }"
    echo "$label.children=$(children "$ROUSE_PID")"
    echo "$label.rss_kb=$(status_kb "$ROUSE_PID" VmRSS)"
    echo "$label.hwm_kb=$(status_kb "$ROUSE_PID" VmHWM)"
    echo "$label.threads=$(status_kb "$ROUSE_PID" Threads)"
    echo "$label.idle_cpu_ms=$(((c1 - c0) * 1000 / HZ))"
    echo "$label.ls_all_ms=$(ls_ms)"
    echo "$label.ls_page_ms=$(ls_ms --limit 100)"
  } >>"$T/measure.txt"
  bench_log "$label: $(grep "^$label\." "$T/measure.txt" | tr '\n' ' ')"
}
deploy() { # DIR LABEL
  local t0 t1
  t0=$(date +%s%N)
  "$ROUSE_BIN" deploy "$1" >"$T/deploy.log" 2>&1 || { tail -20 "$T/deploy.log" >&2; bench_die "deploy $2 failed"; }
  t1=$(date +%s%N)
  echo "$2 $(((t1 - t0) / 1000000))" >>"$T/deploys.txt"
  bench_log "deployed $2 in $(((t1 - t0) / 1000000)) ms"
}

bench_wait_for_quiet
bench_log "load average at start: $BENCH_LOAD_START"
: >"$T/measure.txt"
: >"$T/latency.txt"
: >"$T/deploys.txt"

# --- phase 1: TOTAL functions ---------------------------------------------------
bench_start_rouse "$GW_PORT" "$ADMIN_PORT"
echo "many.rss_start_kb=$(status_kb "$ROUSE_PID" VmRSS)" >>"$T/measure.txt"
for ((s = 0; s < SERVICES; s++)); do
  deploy "$T/svc$s" "d$s"
done
measure_idle many
latency many
echo "many.rss_warm_kb=$(status_kb "$ROUSE_PID" VmRSS)" >>"$T/measure.txt"
WARM_PID=$(bench_instance_pids "f$LAST" | head -n1)
[ -n "$WARM_PID" ] || bench_die "no instance of f$LAST after the latency runs"
BENCH_GROUPS="$WARM_PID"
bench_stop_pid "$ROUSE_PID" TERM rouse
# Instances are their own process groups; rouse must have stopped them.
! kill -0 "-$WARM_PID" 2>/dev/null || bench_die "instance group $WARM_PID outlived rouse"
mv "$T/rouse-data" "$T/rouse-data-many"

# --- phase 2: the same function alone -------------------------------------------
bench_start_rouse "$GW_PORT" "$ADMIN_PORT"
echo "one.rss_start_kb=$(status_kb "$ROUSE_PID" VmRSS)" >>"$T/measure.txt"
deploy "$T/single" single
measure_idle one
latency one
echo "one.rss_warm_kb=$(status_kb "$ROUSE_PID" VmRSS)" >>"$T/measure.txt"

# --- report -----------------------------------------------------------------------
python3 - "$T/measure.txt" "$T/latency.txt" "$T/deploys.txt" "$TOTAL" "$SERVICES" "$FUNCS" \
  "$RSS_GOAL_KB" "$IDLE" "$DURATION" "$ROUNDS" >"$T/table.txt" <<'EOF'
import sys
measure, latency, deploys = sys.argv[1:4]
total, services, funcs, goal_kb, idle, duration, rounds = sys.argv[4:11]
total, goal_kb = int(total), int(goal_kb)
m = dict(line.strip().split("=", 1) for line in open(measure) if "=" in line)
def g(k): return int(m.get(k, "0"))
lat = {}
for line in open(latency):
    label, _, *kv = line.split()
    lat.setdefault(label, []).append(dict(x.split("=") for x in kv))
def median(xs):
    xs = sorted(xs); n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
def lat_of(label, key):
    return median([int(r[key]) for r in lat.get(label, [])]) / 1000
times = [(l.split()[0], int(l.split()[1])) for l in open(deploys)]
many_deploys = [t for name, t in times if name != "single"]
mb = lambda kb: f"{kb / 1024:.1f}"

out = []
out.append(f"{total} web functions ({services} deploys x {funcs}, one route /f{{i}} each) vs 1 function; idle = no requests.")
out.append(f"latency: wrk -t1 -c1 on the last function deployed (warm instance), {rounds} x {duration}, median; CPU over {idle} s idle.")
out.append("")
hdr = f"{'':<36} {total:>12} fns {1:>10} fn"
out.append(hdr)
out.append("-" * len(hdr))
rows = [
    ("functions (rouse ls)", "functions", str),
    ("instances (rouse ls)", "instances_ls", str),
    ("instance processes (rouse children)", "children", str),
    ("RSS idle, 0 instances (MB)", "rss_kb", mb),
    ("RSS peak during deploys (MB)", "hwm_kb", mb),
    ("RSS at start, nothing deployed (MB)", "rss_start_kb", mb),
    ("RSS after the latency runs (MB)", "rss_warm_kb", mb),
    ("threads", "threads", str),
    (f"CPU over {idle} s idle (ms)", "idle_cpu_ms", str),
    ("rouse ls, every page (ms)", "ls_all_ms", str),
    ("rouse ls --limit 100 (ms)", "ls_page_ms", str),
]
for title, key, fmt in rows:
    out.append(f"{title:<36} {fmt(g('many.' + key)):>16} {fmt(g('one.' + key)):>13}")
out.append(f"{'GET /f' + str(total - 1) + ' p50 (ms)':<36} {lat_of('many', 'p50_us'):>16.3f} {lat_of('one', 'p50_us'):>13.3f}")
out.append(f"{'GET /f' + str(total - 1) + ' p99 (ms)':<36} {lat_of('many', 'p99_us'):>16.3f} {lat_of('one', 'p99_us'):>13.3f}")
errors = sum(int(r["errors"]) for rs in lat.values() for r in rs)
out.append(f"{'wrk errors':<36} {errors:>16}")
out.append("")
if many_deploys:
    out.append(f"deploy of {funcs} functions (ms), in order: " + " ".join(str(t) for t in many_deploys))
    out.append(f"  first {many_deploys[0]} ms, last {many_deploys[-1]} ms (with {total - int(funcs)} already deployed); "
               f"total {sum(many_deploys) / 1000:.1f} s")
out.append("")
rss = g("many.rss_kb")
ratio = rss / goal_kb
inst = g("many.instances_ls") + g("many.children")
p = lat_of("many", "p50_us") / max(lat_of("one", "p50_us"), 1e-9)
out.append(f"goal RSS <= 64 MB with {total} idle functions: {mb(rss)} MB = {ratio:.2f} x goal -> {'meets' if ratio <= 1 else 'misses'}")
out.append(f"goal 0 instances: {g('many.instances_ls')} (ls), {g('many.children')} processes -> {'meets' if inst == 0 else 'misses'}")
out.append(f"route lookup: p50 with {total} functions / with 1 = {p:.2f}")
print("\n".join(out))
EOF

echo
cat "$T/table.txt"
echo
if [ -z "${NO_RECORD:-}" ]; then
  bench_record "density" "$COMMAND" "$T/table.txt"
fi
