#!/usr/bin/env bash
# Stream mappings: put → handler-start latency and records/s, one node.
#
# Latency: a warm python handler consuming stream `lat` (1 shard,
# `batchWindow: 0`, batchSize 100) appends each record's data and its start
# time to a file; boto3 puts N records one at a time (`put_record`) with a
# pause between them, so each finds the poller caught up and measures the
# wake-up path (commit → poller woken → read → invoke), not a backlog.
# Throughput: M records are put to stream `bulk` (1 shard) in put_records
# calls of 500 while a second python handler consumes them at batchSize 100;
# records/s is M over the time from the first put to the end of the last
# batch.
# The server runs with --isolation none so the handlers can write files.
# STORE=postgres runs the same against a private PostgreSQL (initdb in the
# bench's temp dir, run as the `postgres` user): the cluster's store, where
# a put wakes the poller through NOTIFY.
#
# Usage: bash bench/events.sh            STORE=postgres bash bench/events.sh
# Settings: N=200 GAP=0.05 M=20000 BENCH_PORT_BASE=28680 LOAD_MAX=1.0 STORE=sqlite
#   LOAD_WAIT=180 NO_RECORD=1 KEEP_TMP=1 ROUSE_BIN=path (skip the rouse build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COMMAND=$(bench_command events.sh N GAP M BENCH_PORT_BASE STORE)
N=${N:-200}
GAP=${GAP:-0.05}
M=${M:-20000}
PORT_BASE=${BENCH_PORT_BASE:-28680}
GW_PORT=$((PORT_BASE + 1))
ADMIN_PORT=$((PORT_BASE + 2))
PG_PORT=$((PORT_BASE + 3))
STORE=${STORE:-sqlite}

bench_need python3:python3
python3 -c 'import boto3' 2>/dev/null || bench_die "boto3 is missing (pip install boto3)"
bench_build
bench_ports_free "$GW_PORT" "$ADMIN_PORT"
bench_setup
T=$BENCH_TMP

mkdir -p "$T/fn"
cat >"$T/fn/handler.py" <<'EOF2'
import base64, os, time

def latency(event, context):
    start = time.time()
    with open(os.environ["OUT"], "a") as f:
        for r in event["Records"]:
            f.write(f"{base64.b64decode(r['kinesis']['data']).decode()} {start:.6f}\n")
    return {}

def bulk(event, context):
    n = len(event["Records"])
    with open(os.environ["OUT"], "a") as f:
        f.write(f"{n} {time.time():.6f}\n")
    return {}
EOF2
cat >"$T/fn/rouse.yaml" <<EOF2
service: bench
provider: { runtime: python3.12 }
functions:
  lat:
    handler: handler.latency
    environment: { OUT: $T/starts.txt }
    scaling: { idleTimeout: 86400 }
    events:
      - stream: { arn: lat, batchSize: 100, batchWindow: 0 }
  bulk:
    handler: handler.bulk
    environment: { OUT: $T/bulk.txt }
    scaling: { idleTimeout: 86400 }
    events:
      - stream: { arn: bulk, batchSize: 100, batchWindow: 0 }
EOF2

cat >"$T/client.py" <<'EOF2'
import sys, time
import boto3
from botocore.config import Config

endpoint, n, gap, m, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
k = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="bench", aws_secret_access_key="bench",
                 config=Config(retries={"max_attempts": 1}))
# Warm the instance (and the client's connection) first.
k.put_record(StreamName="lat", Data=b"-1", PartitionKey="p")
time.sleep(2)
with open(out, "w") as f:
    for i in range(n):
        sent = time.time()
        k.put_record(StreamName="lat", Data=str(i).encode(), PartitionKey="p")
        f.write(f"{i} {sent:.6f}\n")
        time.sleep(gap)
k.put_record(StreamName="bulk", Data=b"warm", PartitionKey="p")
time.sleep(2)
with open(out + ".bulk", "w") as f:
    f.write(f"{time.time():.6f}\n")
    for i in range(0, m, 500):
        k.put_records(StreamName="bulk", Records=[
            {"Data": b"x" * 100, "PartitionKey": str(j)} for j in range(i, min(m, i + 500))])
EOF2

cat >"$T/report.py" <<'EOF2'
import sys

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

sent = {int(i): float(t) for i, t in (l.split() for l in open(sys.argv[1]))}
starts = {}
for line in open(sys.argv[2]):
    i, t = line.split()
    if int(i) >= 0:
        starts.setdefault(int(i), float(t))
lat = [starts[i] - sent[i] for i in starts if i in sent]
print(f"{'path':<28} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
print(f"{'put_record -> handler start':<28} {pct(lat, 50) * 1e3:8.2f} {pct(lat, 90) * 1e3:8.2f} {pct(lat, 99) * 1e3:8.2f}")
print(f"records: {len(sent)} put, {len(starts)} started")
first = float(open(sys.argv[1] + ".bulk").read().split()[0])
batches = [(int(n), float(t)) for n, t in (l.split() for l in open(sys.argv[3]))][1:]
done = sum(n for n, _ in batches)
end = max(t for _, t in batches)
print(f"bulk: {done} records in {len(batches)} batches, {end - first:.2f} s: {done / (end - first):.0f} records/s (batch 100, 1 shard, python handler)")
EOF2

STORE_ARGS=()
if [ "$STORE" = postgres ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$PG_BIN/initdb" ] || bench_die "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)"
  bench_ports_free "$PG_PORT"
  mkdir -p "$T/pg" && chown postgres "$T/pg" && chmod 755 "$T"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$T/pg/data" -U postgres --auth=trust --no-sync -E UTF8 >"$T/initdb.log" 2>&1 \
    || { cat "$T/initdb.log" >&2; bench_die "initdb failed"; }
  runuser -u postgres -- "$PG_BIN/postgres" -D "$T/pg/data" -p "$PG_PORT" -k "$T/pg" -c listen_addresses=127.0.0.1 \
    -c fsync=off >"$T/pg.log" 2>&1 &
  bench_track $! TERM postgres
  bench_wait_port "$PG_PORT"
  STORE_ARGS=(--store "postgres://postgres@127.0.0.1:$PG_PORT/postgres")
elif [ "$STORE" != sqlite ]; then
  bench_die "STORE=$STORE: sqlite or postgres"
fi

bench_start_rouse "$GW_PORT" "$ADMIN_PORT" --isolation none "${STORE_ARGS[@]}"
"$ROUSE_BIN" streams create lat >/dev/null
"$ROUSE_BIN" streams create bulk >/dev/null
"$ROUSE_BIN" deploy "$T/fn" >"$T/deploy.log" 2>&1 || { cat "$T/deploy.log" >&2; bench_die "deploy failed"; }
bench_wait_for_quiet
python3 "$T/client.py" "http://127.0.0.1:$GW_PORT" "$N" "$GAP" "$M" "$T/sent.txt"
# Wait for the bulk records to be consumed.
for _ in $(seq 600); do
  got=$(awk 'NR > 1 { s += $1 } END { print s + 0 }' "$T/bulk.txt" 2>/dev/null || echo 0)
  [ "$got" -ge "$M" ] && break
  sleep 0.1
done
{
  python3 "$T/report.py" "$T/sent.txt" "$T/starts.txt" "$T/bulk.txt"
  echo "binary: $ROUSE_BIN; store: $STORE; gap between puts: ${GAP}s; isolation none"
} | tee "$T/table.txt"

if [ -z "${NO_RECORD:-}" ]; then
  bench_record "stream put → handler start, records/s" "$COMMAND" "$T/table.txt"
fi
