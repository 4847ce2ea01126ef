#!/usr/bin/env bash
# Cold-start benchmark: how much time rouse adds to a cold start.
#
#   platform-added = (request sent → first response byte, through rouse, on a
#                     function with no instance)
#                  − (the app's own start: exec → first response byte, measured
#                     by starting the same app directly, without rouse)
#
# Two apps, each deployed as a rouse web function (rouse picks the port):
#   tiny   a ~60-line C HTTP server compiled here (starts in well under 1 ms,
#          so rouse's share is not hidden by the app's)
#   nginx  stock nginx (master + 1 worker) with a `listen` rewrite, as in
#          examples/nginx-site
#   tiny7ms  the same C server sleeping 7 ms before it listens: shows how
#          readiness detection scales with the app's own start time
#   tinysock, tiny7mssock  the same two with `socketActivation: true`: rouse
#          binds the socket and passes it as fd 3, so the request queues in
#          the kernel and no readiness polling happens (their app start is
#          timed with the app binding its own socket, as tiny and tiny7ms)
# Each of N rounds (after one discarded round, which also extracts the
# artifact) alternates: start the app directly and time it; then wait until
# rouse reports 0 instances (idleTimeout is 0.1 s) and time a cold request
# through the gateway (checking X-Rouse-Cold-Start: true). The pairs give the
# distribution of the platform-added time. The app's start is timed twice:
# from just before the harness spawns it (includes fork+exec, counted as the
# app's) and from when posix_spawn returned (exec done; the brief's exec→ready).
#
# Usage: bash bench/cold-start.sh
# Settings (environment): N=30 APPS="tiny nginx tiny7ms tinysock tiny7mssock"
#   ISOLATION=auto|none|process|namespaces (rouse's --isolation; default: rouse's)
#   BENCH_PORT_BASE=28280 LOAD_MAX=1.0 LOAD_WAIT=180 NO_RECORD=1 KEEP_TMP=1
#   ROUSE_BIN=path (skip build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COMMAND=$(bench_command cold-start.sh N APPS ISOLATION BENCH_PORT_BASE)
N=${N:-30}
APPS=${APPS:-"tiny nginx tiny7ms tinysock tiny7mssock"}
PORT_BASE=${BENCH_PORT_BASE:-28280}
GW_PORT=$((PORT_BASE + 1))
ADMIN_PORT=$((PORT_BASE + 2))
DIRECT_PORT=$((PORT_BASE + 3)) # where the harness runs the app on its own

bench_need nginx:nginx python3:python3 cc:gcc curl:curl
bench_build
bench_ports_free "$GW_PORT" "$ADMIN_PORT" "$DIRECT_PORT"
bench_setup
T=$BENCH_TMP

# --- the apps ---------------------------------------------------------------------
mkdir -p "$T/app"
cc -O2 -o "$T/app/tiny" "$BENCH_ROOT/bench/tiny-server.c"

{
  bench_nginx_preamble 1 1024
  cat <<'EOF'
    server {
        listen 8080;
        location / { default_type text/plain; return 200 "ok\n"; }
    }
}
EOF
} >"$T/app/nginx.conf"

cat >"$T/app/rouse.yaml" <<'EOF'
service: cold
functions:
  tiny:
    web:
      command: ["./tiny"]
    scaling: { idleTimeout: 0.1, maxInstances: 1 }
    events:
      - http: { path: "/tiny", method: get }
  tiny7ms:
    web:
      command: ["./tiny"]
    environment: { START_DELAY_MS: "7" }
    scaling: { idleTimeout: 0.1, maxInstances: 1 }
    events:
      - http: { path: "/tiny7ms", method: get }
  tinysock:
    web:
      command: ["./tiny"]
      socketActivation: true
    scaling: { idleTimeout: 0.1, maxInstances: 1 }
    events:
      - http: { path: "/tinysock", method: get }
  tiny7mssock:
    web:
      command: ["./tiny"]
      socketActivation: true
    environment: { START_DELAY_MS: "7" }
    scaling: { idleTimeout: 0.1, maxInstances: 1 }
    events:
      - http: { path: "/tiny7mssock", method: get }
  nginx:
    web:
      command: ["nginx", "-p", ".", "-c", "nginx.conf"]
      rewrite:
        - { file: nginx.conf, match: 'listen\s+\d+;', replace: 'listen 127.0.0.1:${PORT};' }
    scaling: { idleTimeout: 0.1, maxInstances: 1 }
    events:
      - http: { path: "/nginx", method: get }
EOF

# The harness's own copy of each app, configured for DIRECT_PORT.
mkdir -p "$T/direct"
cp "$T/app/tiny" "$T/direct/tiny"
sed "s/listen 8080;/listen 127.0.0.1:$DIRECT_PORT;/" "$T/app/nginx.conf" >"$T/direct/nginx.conf"

# --- rouse ----------------------------------------------------------------------------
# The harness checks every timed request really was a cold start; newer
# builds send X-Rouse-Cold-Start only when asked to.
SERVE_FLAGS=()
if "$ROUSE_BIN" serve --help 2>/dev/null | grep -q -- --cold-start-header; then
  SERVE_FLAGS+=(--cold-start-header)
fi
if [ -n "${ISOLATION:-}" ]; then
  SERVE_FLAGS+=(--isolation "$ISOLATION")
fi
bench_start_rouse "$GW_PORT" "$ADMIN_PORT" "${SERVE_FLAGS[@]}"
"$ROUSE_BIN" deploy "$T/app" >"$T/deploy.log" 2>&1 || { cat "$T/deploy.log" >&2; bench_die "deploy failed"; }

bench_wait_for_quiet
bench_log "load average at start: $BENCH_LOAD_START"

# --- measure ----------------------------------------------------------------------------
cat >"$T/harness.py" <<'EOF'
import json, os, shutil, signal, socket, sys, time, urllib.request

os.chdir(sys.argv[6] + "/direct")  # the apps' relative paths (./tiny, -p .) resolve here

n, apps = int(sys.argv[1]), sys.argv[2].split()
gw, admin, direct_port, tmp, rouse_pid = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
token = os.environ["ROUSE_ADMIN_TOKEN"]
now = time.perf_counter_ns

def admin_get(path):
    req = urllib.request.Request(f"http://127.0.0.1:{admin}{path}",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)

names = {}
for f in admin_get("/v1/functions?limit=1000")["functions"]:
    for app in apps:
        if f["name"].endswith("-" + app):
            names[app] = f["name"]

def instances(app):
    return len(admin_get(f"/v1/functions/{names[app]}").get("instances", []))

def wait_no_instances(app, limit=15.0):
    deadline = time.monotonic() + limit
    while instances(app):
        if time.monotonic() > deadline:
            sys.exit(f"{app}: instance still running after {limit}s")
        time.sleep(0.02)

def request(port, path):
    """Connects, then times request sent -> first response byte. Returns (µs, response head)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = now()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
    first = s.recv(1)
    t1 = now()
    data = first
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return (t1 - t0) / 1000, data.decode("latin-1")

def direct(app):
    """Starts the app on its own; times spawn -> first byte and exec -> first byte (µs).

    posix_spawn (vfork + exec) returns once the child has exec'd, so the
    time right after it is the exec time, to within a few µs."""
    argv, extra = {
        "tiny": (["./tiny"], {}),
        "tiny7ms": (["./tiny"], {"START_DELAY_MS": "7"}),
        "tinysock": (["./tiny"], {}),
        "tiny7mssock": (["./tiny"], {"START_DELAY_MS": "7"}),
        "nginx": (["nginx", "-p", ".", "-c", "nginx.conf"], {}),
    }[app]
    path = os.path.abspath(argv[0]) if "/" in argv[0] else shutil.which(argv[0])
    env = {"PATH": os.environ["PATH"], "PORT": str(direct_port), **extra}
    quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    t_spawn = now()
    pid = os.posix_spawn(path, argv, env, file_actions=quiet, setsid=True)
    t_exec = now()
    with open(f"{tmp}/direct.pgid", "w") as f:  # for the script's cleanup if we are killed
        f.write(str(pid))
    req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    try:
        while True:
            s = socket.socket()
            try:
                s.connect(("127.0.0.1", direct_port))
                s.sendall(req)
                if s.recv(1):
                    t1 = now()
                    break
            except OSError:
                pass
            finally:
                s.close()
            # A short sleep rather than a spin: on a small machine a spinning
            # poller takes the CPU the starting app needs. This sets the
            # resolution (~0.1 ms): the app start may read up to that much
            # late, which understates rouse's share by as much.
            time.sleep(0.00005)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                sys.exit(f"{app} exited early: status {status}")
    finally:
        # SIGTERM first, so nginx's master reaps its worker; then make sure.
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while os.waitpid(pid, os.WNOHANG)[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        try:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.unlink(f"{tmp}/direct.pgid")
    return (t1 - t_spawn) / 1000, (t1 - t_exec) / 1000

def cold(app):
    us, resp = request(gw, f"/{app}")
    head = resp.split("\r\n\r\n", 1)[0].lower()
    if not head.startswith("http/1.1 200") or "x-rouse-cold-start: true" not in head:
        sys.exit(f"{app}: expected a 200 cold start, got:\n{head}")
    warm_us, resp = request(gw, f"/{app}")
    if "x-rouse-cold-start" in resp.split("\r\n\r\n", 1)[0].lower():
        sys.exit(f"{app}: second request was cold too")
    return us, warm_us

def cpu():
    """(busy, total) clock ticks of the machine, and ticks used by this
    harness, rouse and everything they started (reaped children included)."""
    with open("/proc/stat") as f:
        t = [int(x) for x in f.readline().split()[1:]]
    ours = 0
    for pid in ("self", rouse_pid):
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        ours += sum(int(x) for x in st[st.rindex(")") + 2:].split()[11:15])
    return sum(t[:8]) - t[3] - t[4], sum(t[:8]), ours

out = {}
cpu0 = cpu()
for app in apps:
    wait_no_instances(app)
    first_cold, _ = cold(app)   # discarded round: first start extracts the artifact
    direct(app)
    rows = []
    for i in range(n):
        # Nothing of rouse's runs (or stops) while the app is timed on its own.
        wait_no_instances(app)
        spawn_us, exec_us = direct(app)
        cold_us, warm_us = cold(app)
        rows.append(dict(spawn=spawn_us, exec=exec_us, cold=cold_us, warm=warm_us))
    out[app] = dict(name=names[app], first_cold=first_cold, rows=rows)
    wait_no_instances(app)
# Instances still alive are counted with rouse once reaped; none are left here.
cpu1 = cpu()
busy, total, ours = (b - a for a, b in zip(cpu0, cpu1))
out["_other_pct"] = 100.0 * max(busy - ours, 0) / total if total else 0.0
json.dump(out, sys.stdout)
EOF
BENCH_GROUP_FILES="$T/direct.pgid"
bench_log "measuring $N cold starts per app ($APPS)"
python3 "$T/harness.py" "$N" "$APPS" "$GW_PORT" "$ADMIN_PORT" "$DIRECT_PORT" "$T" "$ROUSE_PID" >"$T/raw.json"

# --- report -------------------------------------------------------------------------------
python3 - "$T/raw.json" "$T/rouse-data/logs" >"$T/table.txt" <<'EOF'
import json, re, sys
raw = json.load(open(sys.argv[1]))
other = raw.pop("_other_pct", 0.0)
logs = sys.argv[2]
GOAL_MS = 2.0

def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, -(-len(xs) * p // 100) - 1)) # nearest rank
    return xs[int(k)]

out = []
out.append("cold start through rouse vs the app's own start; times in ms; one discarded round first.")
out.append("app start: the app run directly by the harness, until its first response byte")
out.append("  (from spawn: before posix_spawn; from exec: after posix_spawn returned, i.e. once the child exec'd).")
out.append("rouse cold: request sent -> first byte through the gateway, no instance running (X-Rouse-Cold-Start: true).")
out.append("platform-added = rouse cold - app start, per paired round; 'ready in' = rouse's own log (spawn -> ready).")
out.append(f"other processes (not this benchmark) used {other:.1f}% of the machine's CPU during the measurement.")
out.append("")
hdr = f"{'app':<6} {'measure':<34} {'p50':>8} {'p90':>8} {'min':>8} {'max':>8}"
out.append(hdr)
out.append("-" * len(hdr))
summary = []
for app, d in raw.items():
    rows = d["rows"]
    ready = []
    try:
        for line in open(f"{logs}/{d['name']}.log"):
            m = re.search(r"ready in ([0-9.]+) ms", line)
            if m:
                ready.append(float(m.group(1)))
    except OSError:
        pass
    ready = ready[1:]  # the discarded round
    series = [
        ("app start from spawn", [r["spawn"] / 1000 for r in rows]),
        ("app start from exec", [r["exec"] / 1000 for r in rows]),
        ("rouse cold (first byte)", [r["cold"] / 1000 for r in rows]),
        ("rouse warm, same app (first byte)", [r["warm"] / 1000 for r in rows]),
        ("rouse log: instance ready in", ready),
        ("platform-added vs exec   (brief)", [(r["cold"] - r["exec"]) / 1000 for r in rows]),
        ("platform-added vs spawn", [(r["cold"] - r["spawn"]) / 1000 for r in rows]),
    ]
    for label, xs in series:
        if not xs:
            continue
        out.append(f"{app:<6} {label:<34} {pct(xs, 50):>8.3f} {pct(xs, 90):>8.3f} {min(xs):>8.3f} {max(xs):>8.3f}")
    out.append(f"{app:<6} {'first cold start after deploy':<34} {d['first_cold'] / 1000:>8.3f}")
    out.append("")
    added = [(r["cold"] - r["exec"]) / 1000 for r in rows]
    added_spawn = [(r["cold"] - r["spawn"]) / 1000 for r in rows]
    summary.append((app, len(rows), pct(added, 50), pct(added, 90), pct(added_spawn, 50)))
out.append(f"platform-added cold start vs the goal (<= {GOAL_MS} ms p50):")
hdr = f"{'app':<6} {'n':>3} {'p50 ms':>8} {'p90 ms':>8} {'p50/goal':>9} {'(vs spawn) p50/goal':>20}  verdict"
out.append(hdr)
out.append("-" * len(hdr))
for app, n, p50, p90, p50s in summary:
    verdict = "meets goal" if p50 <= GOAL_MS else "misses goal"
    out.append(f"{app:<6} {n:>3} {p50:>8.3f} {p90:>8.3f} {p50 / GOAL_MS:>9.2f} {p50s / GOAL_MS:>20.2f}  {verdict}")
print("\n".join(out))
EOF

echo "rouse --isolation: ${ISOLATION:-auto (the default: the strongest the host allows)}" >>"$T/table.txt"
echo
cat "$T/table.txt"
echo
if [ -z "${NO_RECORD:-}" ]; then
  bench_record "cold-start" "$COMMAND" "$T/table.txt"
fi
