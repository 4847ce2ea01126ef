#!/usr/bin/env bash
# Async (Event) invoke latency: from boto3's `invoke(InvocationType='Event')`
# to the handler starting, through the durable queue (the event is committed
# to SQLite before the 202, then claimed and run by the dispatcher).
#
# A warm python handler appends its start time to a file; the client sends N
# events one at a time with a pause between them (so each finds the instance
# idle and measures the queue, not a backlog), recording the time before the
# call and the time the 202 arrived. Prints p50/p90/p99 of
#   sent → start   (the whole path as a producer sees it)
#   202 → start    (what follows the accept: claim, dispatch, runtime hand-off)
#   sent → 202     (the accept itself, including the commit)
#   DryRun         (the same call answered 204 without storing anything:
#                   what boto3 and HTTP cost alone, for comparison)
# The server runs with --isolation none so the handler can write the file.
#
# Usage: bash bench/async-invoke.sh
# Settings: N=200 GAP=0.05 BENCH_PORT_BASE=28580 LOAD_MAX=1.0 LOAD_WAIT=180
#   NO_RECORD=1 KEEP_TMP=1 ROUSE_BIN=path (skip the rouse build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COMMAND=$(bench_command async-invoke.sh N GAP BENCH_PORT_BASE)
N=${N:-200}
GAP=${GAP:-0.05}
PORT_BASE=${BENCH_PORT_BASE:-28580}
GW_PORT=$((PORT_BASE + 1))
ADMIN_PORT=$((PORT_BASE + 2))

bench_need python3:python3
python3 -c 'import boto3' 2>/dev/null || bench_die "boto3 is missing (pip install boto3)"
bench_build
bench_ports_free "$GW_PORT" "$ADMIN_PORT"
bench_setup
T=$BENCH_TMP

mkdir -p "$T/fn"
cat >"$T/fn/handler.py" <<'EOF2'
import os, time

def handler(event, context):
    start = time.time()
    with open(os.environ["OUT"], "a") as f:
        f.write(f"{event['i']} {start:.6f}\n")
    return {}
EOF2
cat >"$T/fn/rouse.yaml" <<EOF2
service: bench
functions:
  rec:
    runtime: python3.12
    handler: handler.handler
    memorySize: 128
    environment: { OUT: $T/starts.txt }
    scaling: { idleTimeout: 86400, maxInstances: 1 }
EOF2

cat >"$T/client.py" <<'EOF2'
import json, sys, time
import boto3
from botocore.config import Config

endpoint, n, gap, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
client = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench",
                      config=Config(retries={"max_attempts": 1}))
# Warm the instance (and the client's connection) first.
client.invoke(FunctionName="bench-dev-rec", Payload=json.dumps({"i": -1}))
with open(out, "w") as f:
    for i in range(n):
        sent = time.time()
        resp = client.invoke(FunctionName="bench-dev-rec", InvocationType="Event",
                             Payload=json.dumps({"i": i}))
        accepted = time.time()
        assert resp["StatusCode"] == 202, resp
        f.write(f"{i} {sent:.6f} {accepted:.6f}\n")
        time.sleep(gap)
with open(out + ".dry", "w") as f:
    for i in range(n):
        sent = time.time()
        resp = client.invoke(FunctionName="bench-dev-rec", InvocationType="DryRun",
                             Payload=json.dumps({"i": i}))
        f.write(f"{time.time() - sent:.6f}\n")
        assert resp["StatusCode"] == 204, resp
EOF2

cat >"$T/report.py" <<'EOF2'
import sys

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

sent = {}
for line in open(sys.argv[1]):
    i, s, a = line.split()
    sent[int(i)] = (float(s), float(a))
starts = {}
for line in open(sys.argv[2]):
    i, t = line.split()
    if int(i) >= 0:
        starts.setdefault(int(i), float(t))
missing = sorted(set(sent) - set(starts))
rows = {
    "sent -> start": [starts[i] - sent[i][0] for i in starts if i in sent],
    "202 -> start": [starts[i] - sent[i][1] for i in starts if i in sent],
    "sent -> 202": [sent[i][1] - sent[i][0] for i in sent],
    "DryRun": [float(l) for l in open(sys.argv[1] + ".dry")],
}
print(f"{'path':<16} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
for name, xs in rows.items():
    print(f"{name:<16} {pct(xs, 50) * 1e3:8.2f} {pct(xs, 90) * 1e3:8.2f} {pct(xs, 99) * 1e3:8.2f}")
print(f"events: {len(sent)} sent, {len(starts)} started, missing {missing[:10]}")
EOF2

bench_start_rouse "$GW_PORT" "$ADMIN_PORT" --isolation none
"$ROUSE_BIN" deploy "$T/fn" >"$T/deploy.log" 2>&1 || { cat "$T/deploy.log" >&2; bench_die "deploy failed"; }
bench_wait_for_quiet
python3 "$T/client.py" "http://127.0.0.1:$GW_PORT" "$N" "$GAP" "$T/sent.txt"
# The last events may still be running.
for _ in $(seq 50); do
  [ "$(grep -cv '^-1 ' "$T/starts.txt" 2>/dev/null || echo 0)" -ge "$N" ] && break
  sleep 0.1
done
{
  python3 "$T/report.py" "$T/sent.txt" "$T/starts.txt"
  echo "binary: $ROUSE_BIN; gap between events: ${GAP}s; isolation none"
} | tee "$T/table.txt"

if [ -z "${NO_RECORD:-}" ]; then
  bench_record "async invoke accept → handler start" "$COMMAND" "$T/table.txt"
fi
