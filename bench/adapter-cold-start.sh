#!/usr/bin/env bash
# rouse-adapter cold start: exec of the adapter → its first `GET next` on the
# Runtime API (i.e. after the app is ready), and the release binary's size.
#
# A tiny Runtime API (a raw socket in the harness, so the timestamp is taken
# the moment the request bytes arrive) records when `next` comes and answers
# it with a 500, which makes the adapter exit (and kill its app): each round
# is one cold start. Two cases, N rounds each:
#   external  the app is already listening (started once, outside): the
#             adapter's own cost: start, TCP readiness probe, first `next`
#   python    the adapter starts examples/python-web (python3 -u app.py);
#             shown next to the same app started alone (exec → port accepts,
#             polled every 50 µs), so the difference is what the adapter adds
# Times are from just before the harness spawns the process ("spawn", which
# includes fork+exec) and from when the spawn call returned ("exec", the
# exec is done by then).
#
# Usage: bash bench/adapter-cold-start.sh
# Settings (environment): N=50 BENCH_PORT_BASE=38380 LOAD_MAX=1.0 LOAD_WAIT=180
#   NO_RECORD=1 KEEP_TMP=1 ADAPTER_BIN=path (skip the build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${N:-50}
PORT_BASE=${BENCH_PORT_BASE:-38380}
API_PORT=$((PORT_BASE + 1))
EXTERNAL_PORT=$((PORT_BASE + 2))
APP_PORT=$((PORT_BASE + 3))
COMMAND=$(bench_command adapter-cold-start.sh N BENCH_PORT_BASE ADAPTER_BIN)

bench_need python3:python3
if [ -n "${ADAPTER_BIN:-}" ]; then
  [ -x "$ADAPTER_BIN" ] || bench_die "ADAPTER_BIN=$ADAPTER_BIN is not executable"
  ADAPTER_BIN=$(realpath "$ADAPTER_BIN") # the harness runs it from a scratch dir
else
  # Built on its own, so it gets only its own (lean) features.
  bench_log "cargo build --release -p rouse-adapter"
  (cd "$BENCH_ROOT" && cargo build --release -p rouse-adapter --quiet) || bench_die "build failed"
  ADAPTER_BIN=$BENCH_ROOT/target/release/rouse-adapter
fi
bench_ports_free "$API_PORT" "$EXTERNAL_PORT" "$APP_PORT"
bench_setup
T=$BENCH_TMP
APP=$BENCH_ROOT/examples/python-web/app.py

# The already-running app of the `external` case.
PORT=$EXTERNAL_PORT python3 "$APP" >/dev/null 2>&1 &
bench_track $! TERM external-app
bench_wait_port "$EXTERNAL_PORT"

bench_wait_for_quiet

cat >"$T/harness.py" <<'EOF'
import os, signal, socket, statistics, subprocess, sys, time

adapter, app, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
api_port, external_port, app_port = map(int, sys.argv[4:7])
workdir = sys.argv[7]  # no run.sh here: with no command the adapter waits

api = socket.socket()
api.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
api.bind(("127.0.0.1", api_port))
api.listen(16)
api.settimeout(30)

def first_next():
    """Waits for the adapter's `GET next`; returns when its bytes arrived."""
    while True:
        conn, _ = api.accept()
        conn.settimeout(30)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        arrived = time.perf_counter_ns()
        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        conn.close()
        if b"/runtime/invocation/next" in data:
            return arrived

def reap(proc):
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()

def wait_closed(port):
    """The previous round's app may still hold the port for a moment after SIGKILL."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return
        finally:
            s.close()
        time.sleep(0.001)
    raise SystemExit(f"port {port} still answers 10 s after its app was killed")

def adapter_round(args, port):
    if args:
        wait_closed(port)
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{api_port}", PORT=str(port))
    env.pop("ROUSE_ADAPTER_COMMAND", None)
    t_spawn = time.perf_counter_ns()
    proc = subprocess.Popen([adapter] + args, env=env, cwd=workdir, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t_exec = time.perf_counter_ns()
    t_next = first_next()
    reap(proc)
    return (t_next - t_spawn) / 1e6, (t_next - t_exec) / 1e6

def app_alone_round(port):
    wait_closed(port)
    env = dict(os.environ, PORT=str(port))
    t_spawn = time.perf_counter_ns()
    proc = subprocess.Popen(["python3", "-u", app], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t_exec = time.perf_counter_ns()
    while True:
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
            t_ready = time.perf_counter_ns()
            break
        except OSError:
            time.sleep(0.00005)
        finally:
            s.close()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return (t_ready - t_spawn) / 1e6, (t_ready - t_exec) / 1e6

def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

rows = {"external": [], "python": [], "python alone": []}
# One discarded round of each warms the page cache.
adapter_round([], external_port); adapter_round(["python3", "-u", app], app_port); app_alone_round(app_port)
for _ in range(n):
    rows["external"].append(adapter_round([], external_port))
    rows["python"].append(adapter_round(["python3", "-u", app], app_port))
    rows["python alone"].append(app_alone_round(app_port))

print(f"{'case':<46} {'p50 ms':>8} {'p90 ms':>8} {'min ms':>8} {'max ms':>8}")
def line(label, values):
    print(f"{label:<46} {pct(values, 50):8.3f} {pct(values, 90):8.3f} {min(values):8.3f} {max(values):8.3f}")
for name, what in [("external", "adapter, app already up"),
                   ("python", "adapter starting python-web"),
                   ("python alone", "python-web alone (exec → listening)")]:
    line(f"{what}: spawn", [r[0] for r in rows[name]])
    line(f"{what}: exec", [r[1] for r in rows[name]])
added = pct([r[1] for r in rows["python"]], 50) - pct([r[1] for r in rows["python alone"]], 50)
print(f"\nadapter-added with python-web (p50 exec minus p50 exec of the app alone): {added:.3f} ms")
print(f"rounds: {n} per case")
EOF

bench_log "measuring $N cold starts per case"
mkdir -p "$T/work"
python3 "$T/harness.py" "$ADAPTER_BIN" "$APP" "$N" "$API_PORT" "$EXTERNAL_PORT" "$APP_PORT" "$T/work" >"$T/table.txt"
{
  printf '\nbinary: %s\n' "$ADAPTER_BIN"
  printf 'size: %s bytes (ls -l; release profile, stripped)\n' "$(stat -c %s "$ADAPTER_BIN")"
  if command -v ldd >/dev/null 2>&1; then
    printf 'linked: %s\n' "$(ldd "$ADAPTER_BIN" 2>&1 | awk '{print $1}' | tr '\n' ' ')"
  fi
} >>"$T/table.txt"
cat "$T/table.txt"
if [ -z "${NO_RECORD:-}" ]; then
  bench_record "adapter cold start" "$COMMAND" "$T/table.txt"
fi
