#!/usr/bin/env bash
# Cluster mode: three `rouse serve` nodes (a, b, c) on one private
# PostgreSQL, the python-web example deployed through a and pinned there.
# Measures, in one run:
#   forwarded vs local   wrk through b (forwarded to a over the internal
#                        port, signed) against wrk through a (served at
#                        home): p50/p99 and what forwarding adds
#                        (goal: <= 0.2 ms at p50)
#   change propagation   `UPDATE placements` by psql until all three nodes
#                        answer from the new home (goal: <= 1 s)
#   failed during a move requests looping over the three nodes while the
#                        function moves by SQL (goal: 0)
#   failover             kill -9 of the home node until both survivors
#                        answer (goal: <= TTL 10 s + 1 s)
#
# Usage: bash bench/cluster.sh
# Settings (environment): DURATION=5s CONNS=8 BENCH_PORT_BASE=28480 LOAD_MAX=1.0
#   LOAD_WAIT=180 NO_RECORD=1 KEEP_TMP=1 ROUSE_BIN=path (skip the build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COMMAND=$(bench_command cluster.sh DURATION CONNS BENCH_PORT_BASE ROUSE_BIN)
DURATION=${DURATION:-5s}
CONNS=${CONNS:-8}
PORT_BASE=${BENCH_PORT_BASE:-28480}
PG_PORT=$PORT_BASE

bench_need wrk:wrk python3:python3 curl:curl
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PG_BIN/initdb" ] || bench_need initdb:postgresql
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
bench_build
bench_ports_free "$PG_PORT" $((PORT_BASE + 1)) $((PORT_BASE + 2)) $((PORT_BASE + 3)) \
  $((PORT_BASE + 11)) $((PORT_BASE + 12)) $((PORT_BASE + 13))
bench_setup
T=$BENCH_TMP

# A private PostgreSQL (never the system service), as the tests run it.
PG_USER=postgres # the superuser initdb makes, whoever runs it
RUN_AS=()
[ "$(id -u)" -eq 0 ] && RUN_AS=(runuser -u postgres --)
mkdir -p "$T/pg"
[ "$(id -u)" -eq 0 ] && chown postgres "$T/pg"
"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$T/pg/data" -U "$PG_USER" -A trust >/dev/null
"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$T/pg/data" -l "$T/pg/log" -w \
  -o "-p $PG_PORT -k $T/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
PG_STOP() { "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$T/pg/data" -m immediate stop >/dev/null 2>&1 || true; }
trap 'PG_STOP; bench_cleanup' EXIT
STORE="postgres://$PG_USER@127.0.0.1:$PG_PORT/postgres"
psql_run() { "$PG_BIN/psql" -qAt -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" postgres -c "$1"; }

ROUSE_ADMIN_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export ROUSE_ADMIN_TOKEN
declare -A GW ADMIN PID
i=0
for n in a b c; do
  i=$((i + 1))
  GW[$n]=$((PORT_BASE + i))
  ADMIN[$n]=$((PORT_BASE + 10 + i))
  RUST_LOG=${RUST_LOG:-warn} "$ROUSE_BIN" serve --store "$STORE" --node-name "$n" \
    --listen "127.0.0.1:${GW[$n]}" --admin-listen "127.0.0.1:${ADMIN[$n]}" \
    --isolation none --data-dir "$T/node-$n" >"$T/node-$n.log" 2>&1 &
  PID[$n]=$!
  bench_track "${PID[$n]}" TERM "node-$n"
  bench_wait_port "${ADMIN[$n]}" 60
  bench_wait_port "${GW[$n]}"
done
export ROUSE_ENDPOINT="http://127.0.0.1:${ADMIN[a]}"
"$ROUSE_BIN" deploy "$BENCH_ROOT/examples/python-web" >/dev/null
FN=hello-dev-web
"$ROUSE_BIN" fn place "$FN" --nodes a >/dev/null
for n in a b c; do
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -D - "http://127.0.0.1:${GW[$n]}/hi" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-rouse-node"{print $2}')" = a ] && break
    sleep 0.05
  done
done

bench_wait_for_quiet

# wrk's own latency distribution, in ms at p50 and p99.
percentiles() { # url -> "p50 p99 rps errors"
  wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$T/report.lua" "$1" | grep '^RESULT' | cut -d' ' -f2-
}
cat >"$T/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.3f %.3f %.0f %d\n", latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.requests / (summary.duration / 1e6), errors))
end
LUA
bench_log "wrk through a (local) and b (forwarded to a), $CONNS connections, $DURATION each"
percentiles "http://127.0.0.1:${GW[a]}/hi" >/dev/null # warm both paths
percentiles "http://127.0.0.1:${GW[b]}/hi" >/dev/null
read -r L50 L99 LRPS LERR < <(percentiles "http://127.0.0.1:${GW[a]}/hi")
read -r F50 F99 FRPS FERR < <(percentiles "http://127.0.0.1:${GW[b]}/hi")

cat >"$T/harness.py" <<'PY'
import http.client, sys, threading, time
gws = [int(p) for p in sys.argv[1:4]]
mode = sys.argv[4]
def connections():
    return [http.client.HTTPConnection("127.0.0.1", p, timeout=30) for p in gws]

conns = connections()

def get(i, conns=conns):
    c = conns[i]
    try:
        c.request("GET", "/hi")
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            return r.status, (r.getheader("x-rouse-node"), body[:200])
        return r.status, r.getheader("x-rouse-node")
    except Exception as e:
        conns[i] = http.client.HTTPConnection("127.0.0.1", gws[i], timeout=30)
        return 0, repr(e)

def until_all(node, started, which=range(3)):
    for i in which:
        while get(i) != (200, node):
            time.sleep(0.002)
    return time.monotonic() - started

if mode == "move":
    # python harness.py A B C move TARGET: loop over the nodes while the
    # caller moves the function; prints "seconds_to_all failed sent"
    target = sys.argv[5]
    sent, failed, stop = 0, [], False
    def load():
        global sent
        i, own = 0, connections()  # not shared with the poller below
        while not stop:
            status, by = get(i % 3, own)
            i += 1; sent += 1
            if status != 200:
                failed.append((status, by, i % 3))
    t = threading.Thread(target=load); t.start()
    time.sleep(0.5)
    sys.stdout.write("go\n"); sys.stdout.flush()
    sys.stdin.readline()  # the caller has run the UPDATE
    started = time.monotonic()
    took = until_all(target, started)
    time.sleep(1.0)
    stop = True; t.join()
    for f in failed[:5]:
        sys.stderr.write(f"failed: {f}\n")
    print(f"{took:.3f} {len(failed)} {sent}")
elif mode == "failover":
    # python harness.py A B C failover SURVIVOR_INDEXES: after the kill
    started = time.monotonic()
    which = [int(x) for x in sys.argv[5].split(",")]
    for i in which:
        while get(i)[0] != 200:
            time.sleep(0.005)
    print(f"{time.monotonic() - started:.3f}")
PY

move() { # target node -> "seconds failed sent"
  coproc MOVE { python3 "$T/harness.py" "${GW[a]}" "${GW[b]}" "${GW[c]}" move "$1"; }
  read -r _ <&"${MOVE[0]}"
  psql_run "UPDATE placements SET nodes = '{$1}' WHERE function = '$FN'"
  echo >&"${MOVE[1]}"
  read -r result <&"${MOVE[0]}"
  wait "$MOVE_PID" || true
  echo "$result"
}
bench_log "moving $FN a -> c by SQL under load"
read -r MOVE_S MOVE_FAILED MOVE_SENT < <(move c)
bench_log "moving $FN c -> b by SQL under load"
read -r MOVE2_S MOVE2_FAILED MOVE2_SENT < <(move b)

bench_log "kill -9 of the home node (b)"
kill -9 "${PID[b]}"
FAILOVER_S=$(python3 "$T/harness.py" "${GW[a]}" "${GW[b]}" "${GW[c]}" failover 0,2)

OUT=$T/result.txt
python3 - "$L50" "$L99" "$LRPS" "$LERR" "$F50" "$F99" "$FRPS" "$FERR" \
  "$MOVE_S" "$MOVE_FAILED" "$MOVE_SENT" "$MOVE2_S" "$MOVE2_FAILED" "$MOVE2_SENT" "$FAILOVER_S" "$CONNS" >"$OUT" <<'PY'
import sys
(l50, l99, lrps, lerr, f50, f99, frps, ferr, m1, mf1, ms1, m2, mf2, ms2, fo, conns) = sys.argv[1:]
l50, l99, f50, f99 = map(float, (l50, l99, f50, f99))
print(f"path        conns    rps     p50 ms   p99 ms  errors")
print(f"local (a)   {conns:>5} {float(lrps):>7.0f} {l50:>9.3f} {l99:>8.3f} {lerr:>7}")
print(f"forwarded   {conns:>5} {float(frps):>7.0f} {f50:>9.3f} {f99:>8.3f} {ferr:>7}")
add = f50 - l50
print(f"forwarding adds {add:.3f} ms at p50 ({f50 / l50:.2f}x), {f99 - l99:.3f} ms at p99 "
      f"(goal: <= 0.2 ms at p50: {'meets goal' if add <= 0.2 else 'misses'})")
print(f"SQL move a->c reached all 3 nodes in {float(m1):.3f} s; failed {mf1} of {ms1} requests")
print(f"SQL move c->b reached all 3 nodes in {float(m2):.3f} s; failed {mf2} of {ms2} requests"
      f" (goal: <= 1 s, 0 failed)")
print(f"kill -9 of the home: both survivors answered after {float(fo):.3f} s (goal: <= 11 s)")
PY
cat "$OUT"
[ -n "${NO_RECORD:-}" ] || bench_record "cluster: forwarding, moves, failover" "$COMMAND" "$OUT"
