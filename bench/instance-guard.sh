#!/usr/bin/env bash
# What keeping instances apart costs a cold start: bench/cold-start.sh run
# twice in one go under namespaces isolation, first with the nftables port
# guard off (ROUSE_NETGUARD=0), then on (the default), and the p50s side by
# side. The guard changes nothing per instance (one table element pair per
# function, added before its first start) and the Runtime API checks its
# peer's uid once per connection, so the two should match within noise.
#
# Usage: bash bench/instance-guard.sh
# Settings (environment): N=15 APPS="tiny tinysock" (passed to cold-start.sh)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COMMAND=$(bench_command instance-guard.sh N APPS)
export N=${N:-15} APPS=${APPS:-"tiny tinysock"} ISOLATION=namespaces NO_RECORD=1
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
BENCH_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

for mode in off on; do
  if [ "$mode" = off ]; then guard=0; else guard=1; fi
  ROUSE_NETGUARD=$guard bash "$BENCH_ROOT/bench/cold-start.sh" >"$OUT/$mode.txt" 2>"$OUT/$mode.err" ||
    { cat "$OUT/$mode.err" >&2; bench_die "cold-start.sh failed with the guard $mode"; }
done

python3 - "$OUT/off.txt" "$OUT/on.txt" >"$OUT/table.txt" <<'PY'
import re, sys
def summary(path):
    rows, inside = {}, False
    for line in open(path):
        if line.startswith("platform-added cold start vs the goal"):
            inside = True
            continue
        m = re.match(r"(\S+)\s+(\d+)\s+([0-9.]+)\s+([0-9.]+)", line) if inside else None
        if m:
            rows[m.group(1)] = (float(m.group(3)), float(m.group(4)))
    return rows
off, on = summary(sys.argv[1]), summary(sys.argv[2])
print("platform-added cold start under namespaces, ms (bench/cold-start.sh), port guard off vs on")
print(f"{'app':<8} {'off p50':>8} {'on p50':>8} {'on/off':>7} {'off p90':>8} {'on p90':>8}")
for app in off:
    if app in on:
        a, b = off[app], on[app]
        print(f"{app:<8} {a[0]:>8.3f} {b[0]:>8.3f} {b[0] / a[0] if a[0] else 0:>7.2f} {a[1]:>8.3f} {b[1]:>8.3f}")
PY
cat "$OUT/table.txt"
bench_record "instance-guard" "$COMMAND" "$OUT/table.txt"
