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
#             polled on the adapter's own back-off schedule, 50 µs doubling to
#             10 ms), so the difference is what the adapter adds
# Times are from just before the harness calls posix_spawn ("spawn") and from
# when it returned ("exec": posix_spawn returns once the child has exec'd).
#
# Usage: bash bench/adapter-cold-start.sh
# Settings (environment): N=50 BENCH_PORT_BASE=28380 LOAD_MAX=1.0 LOAD_WAIT=180
#   NO_RECORD=1 KEEP_TMP=1 ADAPTER_BIN=path (skip the build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

N=${N:-50}
# Below the ephemeral range (32768-60999), so no client socket holds one of them.
PORT_BASE=${BENCH_PORT_BASE:-28380}
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
import os, shutil, signal, socket, sys, time

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

DEVNULL = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
           (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]

def spawn(argv, env, cwd=None):
    """posix_spawn (vfork-style): it returns once the child has exec'd, so
    the time right after it is the exec. Own session, to kill it whole."""
    if cwd:
        os.chdir(cwd)
    t_spawn = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=DEVNULL, setsid=True)
    t_exec = time.perf_counter_ns()
    return pid, t_spawn, t_exec

def kill_session(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass

def reap(pid):
    """The adapter exits by itself on the 500 (killing its app); its session
    is killed anyway, so nothing outlives the round."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
        time.sleep(0.001)
    kill_session(pid)

def adapter_round(args, port):
    if args:
        wait_closed(port)
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{api_port}", PORT=str(port))
    env.pop("ROUSE_ADAPTER_COMMAND", None)
    pid, t_spawn, t_exec = spawn([adapter] + args, env, cwd=workdir)
    t_next = first_next()
    reap(pid)
    return (t_next - t_spawn) / 1e6, (t_next - t_exec) / 1e6

def app_alone_round(port):
    """The app started directly, its port polled on the adapter's own
    schedule (50 us doubling to 10 ms), so both see the same detection
    granularity and the difference is the adapter's own cost."""
    wait_closed(port)
    env = dict(os.environ, PORT=str(port))
    python = shutil.which("python3")
    pid, t_spawn, t_exec = spawn([python, "-u", app], env)
    delay = 50e-6
    while True:
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
            t_ready = time.perf_counter_ns()
            break
        except OSError:
            time.sleep(delay)
            delay = min(delay * 2, 0.01)
        finally:
            s.close()
    kill_session(pid)
    return (t_ready - t_spawn) / 1e6, (t_ready - t_exec) / 1e6

def floor_round():
    """What any exec costs here: /bin/true, posix_spawn → exit reaped."""
    t = time.perf_counter_ns()
    pid = os.posix_spawn("/bin/true", ["/bin/true"], dict(os.environ))
    os.waitpid(pid, 0)
    return (time.perf_counter_ns() - t) / 1e6

def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

rows = {"external": [], "python": [], "python alone": []}
# One discarded round of each warms the page cache.
PY = [shutil.which("python3"), "-u", app]
adapter_round([], external_port); adapter_round(PY, app_port); app_alone_round(app_port)
for _ in range(n):
    rows["external"].append(adapter_round([], external_port))
    rows["python"].append(adapter_round(PY, app_port))
    rows["python alone"].append(app_alone_round(app_port))
    rows.setdefault("floor", []).append(floor_round())

print(f"{'case':<46} {'p50 ms':>8} {'p90 ms':>8} {'min ms':>8} {'max ms':>8}")
def line(label, values):
    print(f"{label:<46} {pct(values, 50):8.3f} {pct(values, 90):8.3f} {min(values):8.3f} {max(values):8.3f}")
for name, what in [("external", "adapter, app already up"),
                   ("python", "adapter starting python-web"),
                   ("python alone", "python-web alone (exec → listening)")]:
    line(f"{what}: spawn", [r[0] for r in rows[name]])
    line(f"{what}: exec", [r[1] for r in rows[name]])
line("process floor: /bin/true spawn → exit", rows["floor"])
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
