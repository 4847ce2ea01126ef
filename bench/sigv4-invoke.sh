#!/usr/bin/env bash
# What checking SigV4 costs a warm Invoke API call.
#
# Two rouse servers with the same python lambda: one `--aws-auth open`, one
# `--aws-auth required` with a key from `rouse keys create`. One boto3
# client per server (boto3 signs either way, so the client side is the same)
# invokes in alternating rounds, timing each call; prints the median and
# p90 per mode and the difference of the medians, the server's cost of
# reading the key and verifying the signature.
#
# Usage: bash bench/sigv4-invoke.sh
# Settings: N=200 (calls per round) ROUNDS=5 BENCH_PORT_BASE=28580
#   LOAD_MAX=1.0 LOAD_WAIT=180 NO_RECORD=1 KEEP_TMP=1 ROUSE_BIN=path
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COMMAND=$(bench_command sigv4-invoke.sh N ROUNDS BENCH_PORT_BASE)
N=${N:-200}
ROUNDS=${ROUNDS:-5}
PORT_BASE=${BENCH_PORT_BASE:-28580}
OPEN_GW=$PORT_BASE OPEN_ADMIN=$((PORT_BASE + 1))
SIGNED_GW=$((PORT_BASE + 2)) SIGNED_ADMIN=$((PORT_BASE + 3))

bench_need python3:python3
python3 -c 'import boto3' 2>/dev/null || bench_die "boto3 is missing (pip install boto3)"
bench_build
bench_ports_free "$OPEN_GW" "$OPEN_ADMIN" "$SIGNED_GW" "$SIGNED_ADMIN"
bench_setup
T=$BENCH_TMP

mkdir -p "$T/fn"
cat >"$T/fn/rouse.yaml" <<'EOF'
service: bench
functions:
  fn:
    runtime: python3.12
    handler: app.handler
    memorySize: 128
    scaling: { idleTimeout: 86400 }
EOF
printf 'def handler(event, context):\n    return {"ok": True}\n' >"$T/fn/app.py"

# start_server NAME GW ADMIN MODE: a server with its own data dir and token.
start_server() {
  local name=$1 gw=$2 admin=$3 mode=$4
  RUST_LOG=${RUST_LOG:-warn} ROUSE_ADMIN_TOKEN=bench-$name "$ROUSE_BIN" serve \
    --listen "127.0.0.1:$gw" --admin-listen "127.0.0.1:$admin" --aws-auth "$mode" \
    --data-dir "$T/data-$name" >"$T/rouse-$name.log" 2>&1 &
  bench_track $! TERM "rouse ($name)"
  bench_wait_port "$admin"
  bench_wait_port "$gw"
  ROUSE_ENDPOINT=http://127.0.0.1:$admin ROUSE_ADMIN_TOKEN=bench-$name \
    "$ROUSE_BIN" deploy "$T/fn" >"$T/deploy-$name.log" 2>&1 ||
    { cat "$T/deploy-$name.log" >&2; bench_die "deploy to the $name server failed"; }
}
start_server open "$OPEN_GW" "$OPEN_ADMIN" open
start_server signed "$SIGNED_GW" "$SIGNED_ADMIN" required
KEY=$(ROUSE_ENDPOINT=http://127.0.0.1:$SIGNED_ADMIN ROUSE_ADMIN_TOKEN=bench-signed \
  "$ROUSE_BIN" keys create --json --description bench)
AKID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["AccessKeyId"])' <<<"$KEY")
SECRET=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["SecretAccessKey"])' <<<"$KEY")

cat >"$T/loop.py" <<'EOF'
import statistics, sys, time
import boto3
from botocore.config import Config

open_url, signed_url, akid, secret, n, rounds = sys.argv[1:7]
n, rounds = int(n), int(rounds)

def client(url, key, sec):
    return boto3.client("lambda", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=sec,
                        config=Config(retries={"max_attempts": 1}))

clients = {"open": client(open_url, "testing", "testing"), "required": client(signed_url, akid, secret)}
for c in clients.values():  # warm: instance started, connection open
    for _ in range(20):
        assert c.invoke(FunctionName="bench-dev-fn", Payload=b"{}")["StatusCode"] == 200
times = {m: [] for m in clients}
for _ in range(rounds):
    for mode, c in clients.items():
        for _ in range(n):
            t = time.perf_counter()
            resp = c.invoke(FunctionName="bench-dev-fn", Payload=b'{"k": 1}')
            resp["Payload"].read()
            times[mode].append((time.perf_counter() - t) * 1e6)
print(f"{'mode':<10} {'calls':>6} {'p50 us':>9} {'p90 us':>9}")
p50 = {}
for mode, ts in times.items():
    ts.sort()
    p50[mode] = statistics.median(ts)
    print(f"{mode:<10} {len(ts):>6} {p50[mode]:>9.0f} {ts[int(len(ts) * 0.9)]:>9.0f}")
print(f"SigV4 check adds (p50 required - p50 open): {p50['required'] - p50['open']:.0f} us per call")
EOF

bench_wait_for_quiet
python3 "$T/loop.py" "http://127.0.0.1:$OPEN_GW" "http://127.0.0.1:$SIGNED_GW" \
  "$AKID" "$SECRET" "$N" "$ROUNDS" | tee "$T/table.txt"

if [ -z "${NO_RECORD:-}" ]; then
  bench_record "SigV4 check on the Invoke API (boto3, warm)" "$COMMAND" "$T/table.txt"
fi
