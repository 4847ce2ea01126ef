#!/usr/bin/env bash
# Normal clients while others attack the gateway with idle and slowloris
# connections: the normal clients' errors (goal 0) and latency.
#
# For DURATION seconds, all on loopback:
#   normal    CLIENTS keep-alive connections from 127.0.0.1, each sending
#             GET requests back to back to a web function (the tiny C server
#             from burst.sh); every request without a complete 200 counts as
#             an error
#   idle      IDLE connections (from 127.0.0.2-11) that never send a byte,
#             reopened as soon as rouse closes them
#   slowloris SLOW connections (from 127.0.0.12-21) sending a request head
#             one header line per second, never finishing it, reopened when
#             closed
#   admin     one `GET /v1/functions` on the admin API per second
# rouse runs with `--header-timeout HEADER_TIMEOUT`, so attackers are closed
# and come back several times during the run.
#
# Usage: bash bench/hostile-clients.sh
# Settings: DURATION=30 CLIENTS=8 IDLE=2000 SLOW=200 HEADER_TIMEOUT=5
#   BENCH_PORT_BASE=28780 LOAD_MAX=1.0 LOAD_WAIT=180 NO_RECORD=1 KEEP_TMP=1
#   ROUSE_BIN=path (skip the build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COMMAND=$(bench_command hostile-clients.sh DURATION CLIENTS IDLE SLOW HEADER_TIMEOUT BENCH_PORT_BASE)
DURATION=${DURATION:-30}
CLIENTS=${CLIENTS:-8}
IDLE=${IDLE:-2000}
SLOW=${SLOW:-200}
HEADER_TIMEOUT=${HEADER_TIMEOUT:-5}
PORT_BASE=${BENCH_PORT_BASE:-28780}
GW_PORT=$((PORT_BASE + 1))
ADMIN_PORT=$((PORT_BASE + 2))

bench_need cc:gcc python3:python3
bench_build
bench_ports_free "$GW_PORT" "$ADMIN_PORT"
bench_setup
T=$BENCH_TMP

mkdir -p "$T/app"
cat >"$T/server.c" <<'C'
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static void *serve(void *arg) {
    int fd = (int)(long)arg;
    char buf[4096];
    const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n";
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        if (write(fd, resp, strlen(resp)) < 0) break;
    }
    close(fd);
    return NULL;
}
int main(void) {
    const char *port = getenv("PORT");
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port ? atoi(port) : 8080);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 1024)) return 1;
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        pthread_t t;
        pthread_create(&t, NULL, serve, (void *)(long)c);
        pthread_detach(t);
    }
}
C
cc -O2 -pthread -o "$T/app/server" "$T/server.c"
cat >"$T/app/rouse.yaml" <<EOF
service: hostile
functions:
  fn:
    web:
      command: ["./server"]
    concurrency: 100
    memorySize: 128
    scaling: { maxInstances: 1, idleTimeout: 600 }
    events:
      - http: { path: "/{proxy+}", method: get }
EOF

cat >"$T/load.py" <<'PY'
import asyncio, os, sys, time
gw, admin, duration = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
clients, idle_n, slow_n = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
token = os.environ["ROUSE_ADMIN_TOKEN"]
end = time.monotonic() + duration
stats = {"ok": 0, "errors": 0, "idle_opened": 0, "idle_closed": 0,
         "slow_opened": 0, "slow_closed": 0, "admin_ok": 0, "admin_errors": 0,
         "connect_errors": 0}
latencies = []

async def connect(source):
    return await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", gw, local_addr=(source, 0)), 5)

async def read_response(r):
    head = await r.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await r.readexactly(length)
    return int(head.split(b" ", 2)[1])

async def normal():
    r = w = None
    while time.monotonic() < end:
        if w is None:
            try:
                r, w = await connect("127.0.0.1")
            except Exception:
                stats["errors"] += 1
                await asyncio.sleep(0.01)
                continue
        start = time.perf_counter()
        try:
            w.write(b"GET /x HTTP/1.1\r\nHost: hostile\r\n\r\n")
            status = await asyncio.wait_for(read_response(r), 10)
            latencies.append(time.perf_counter() - start)
            stats["ok" if status == 200 else "errors"] += 1
        except Exception:
            stats["errors"] += 1
            w.close()
            w = None

async def idle(i):
    source = f"127.0.0.{2 + i % 10}"
    while time.monotonic() < end:
        try:
            r, w = await connect(source)
        except Exception:
            stats["connect_errors"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["idle_opened"] += 1
        try:
            # EOF (or a 503 before the close): rouse let go of it.
            await asyncio.wait_for(r.read(1), max(end - time.monotonic(), 0.01))
            stats["idle_closed"] += 1
        except asyncio.TimeoutError:
            pass
        except ConnectionError:
            stats["idle_closed"] += 1
        w.close()

async def slowloris(i):
    source = f"127.0.0.{12 + i % 10}"
    while time.monotonic() < end:
        try:
            r, w = await connect(source)
            w.write(b"GET / HTTP/1.1\r\nHost: hostile\r\n")
        except Exception:
            stats["connect_errors"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["slow_opened"] += 1
        closed = False
        while time.monotonic() < end and not closed:
            try:
                await asyncio.wait_for(r.read(1), 1.0)
                closed = True  # EOF, or an error answer before the close
            except asyncio.TimeoutError:
                try:
                    w.write(b"X-Slow: 1\r\n")
                    await w.drain()
                except ConnectionError:
                    closed = True
            except ConnectionError:
                closed = True
        if closed:
            stats["slow_closed"] += 1
        w.close()

async def admin_loop():
    while time.monotonic() < end:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", admin), 5)
            w.write(f"GET /v1/functions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode())
            status = await asyncio.wait_for(read_response(r), 5)
            stats["admin_ok" if status == 200 else "admin_errors"] += 1
            w.close()
        except Exception:
            stats["admin_errors"] += 1
        await asyncio.sleep(1)

async def main():
    tasks = [idle(i) for i in range(idle_n)] + [slowloris(i) for i in range(slow_n)]
    tasks += [normal() for _ in range(clients)] + [admin_loop()]
    await asyncio.gather(*tasks)
    lat = sorted(latencies) or [0.0]
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000
    s = stats
    print(f"normal clients {clients}: requests {s['ok'] + s['errors']}  errors {s['errors']}  "
          f"rate {s['ok'] / duration:.0f}/s")
    print(f"latency ms  p50 {pct(50):.2f}  p99 {pct(99):.2f}  max {lat[-1] * 1000:.2f}")
    print(f"idle: {idle_n} held; opened {s['idle_opened']}, closed by rouse {s['idle_closed']}")
    print(f"slowloris: {slow_n} held; opened {s['slow_opened']}, closed by rouse {s['slow_closed']}")
    print(f"admin API: ok {s['admin_ok']}  errors {s['admin_errors']}; attacker connect errors {s['connect_errors']}")
    print(f"goal normal errors 0: {'meets' if s['errors'] == 0 else 'MISSES'}")
asyncio.run(main())
PY

ulimit -n 65536 2>/dev/null || true
bench_start_rouse "$GW_PORT" "$ADMIN_PORT" --header-timeout "$HEADER_TIMEOUT"
"$ROUSE_BIN" deploy "$T/app" >"$T/deploy.log" 2>&1 || { cat "$T/deploy.log" >&2; bench_die "deploy failed"; }
curl -fsS "http://127.0.0.1:$GW_PORT/warm" >/dev/null || bench_die "the function does not answer"
bench_wait_for_quiet
{
  python3 "$T/load.py" "$GW_PORT" "$ADMIN_PORT" "$DURATION" "$CLIENTS" "$IDLE" "$SLOW"
  echo "rouse --header-timeout $HEADER_TIMEOUT; rouse's open files at the end: $(ls /proc/"$ROUSE_PID"/fd | wc -l)"
} | tee "$T/table.txt"
BENCH_GROUPS="$(bench_instance_pids fn | tr '\n' ' ')"

if [ -z "${NO_RECORD:-}" ]; then
  bench_record "hostile clients: $CLIENTS normal, $IDLE idle, $SLOW slowloris for ${DURATION}s" "$COMMAND" "$T/table.txt"
fi
