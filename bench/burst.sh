#!/usr/bin/env bash
# A burst of concurrent requests to a cold function: errors, latency, and
# how many instances rouse started (never more than maxInstances).
#
# The function is the tiny C server from cold-start.sh's approach (compiled
# here), with `concurrency: 10` and `maxInstances: 20`, so 1,000 requests
# arriving at once must share 200 slots: some wait in the queue.
#
# Usage: bash bench/burst.sh
# Settings: REQUESTS=1000 CONCURRENCY=10 MAX_INSTANCES=20 BENCH_PORT_BASE=28680
#   LOAD_MAX=1.0 LOAD_WAIT=180 NO_RECORD=1 KEEP_TMP=1 ROUSE_BIN=path (skip build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

COMMAND=$(bench_command burst.sh REQUESTS CONCURRENCY MAX_INSTANCES BENCH_PORT_BASE)
REQUESTS=${REQUESTS:-1000}
CONCURRENCY=${CONCURRENCY:-10}
MAX_INSTANCES=${MAX_INSTANCES:-20}
PORT_BASE=${BENCH_PORT_BASE:-28680}
GW_PORT=$((PORT_BASE + 1))
ADMIN_PORT=$((PORT_BASE + 2))

bench_need cc:gcc python3:python3 curl:curl
bench_build
bench_ports_free "$GW_PORT" "$ADMIN_PORT"
bench_setup
T=$BENCH_TMP

# A small HTTP server that answers every request with "ok", one thread per
# connection, and holds each request 20 ms so the burst really overlaps.
mkdir -p "$T/app"
cat >"$T/server.c" <<'EOF'
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
        usleep(20000);
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
EOF
cc -O2 -pthread -o "$T/app/server" "$T/server.c"
cat >"$T/app/rouse.yaml" <<EOF
service: burst
functions:
  fn:
    web:
      command: ["./server"]
    concurrency: $CONCURRENCY
    timeout: 30
    # Small, so the node's default memory budget (90% of RAM) never caps
    # the burst below maxInstances on a small machine.
    memorySize: 128
    scaling: { maxInstances: $MAX_INSTANCES, queueTimeout: 30, idleTimeout: 300 }
    events:
      - http: { path: "/{proxy+}", method: get }
EOF

# The client: every request on its own connection, all sent at once.
cat >"$T/burst.py" <<'EOF'
import asyncio, sys, time
host, port, n = "127.0.0.1", int(sys.argv[1]), int(sys.argv[2])
async def one():
    start = time.perf_counter()
    try:
        r, w = await asyncio.open_connection(host, port)
        w.write(b"GET /x HTTP/1.1\r\nHost: burst\r\nConnection: close\r\n\r\n")
        await w.drain()
        data = await asyncio.wait_for(r.read(), 60)
        w.close()
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    except Exception:
        status = 0
    return status, time.perf_counter() - start
async def main():
    results = await asyncio.gather(*(one() for _ in range(n)))
    lat = sorted(t for _, t in results)
    errors = sum(1 for s, _ in results if s != 200)
    codes = {}
    for s, _ in results:
        codes[s] = codes.get(s, 0) + 1
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000
    print(f"requests {n}  errors {errors}  statuses {dict(sorted(codes.items()))}")
    print(f"latency ms  p50 {pct(50):.1f}  p99 {pct(99):.1f}  max {lat[-1]*1000:.1f}")
asyncio.run(main())
EOF

ulimit -n 65536 2>/dev/null || true
bench_start_rouse "$GW_PORT" "$ADMIN_PORT"
"$ROUSE_BIN" deploy "$T/app" >"$T/deploy.log" 2>&1 || { cat "$T/deploy.log" >&2; bench_die "deploy failed"; }
bench_wait_for_quiet
{
  python3 "$T/burst.py" "$GW_PORT" "$REQUESTS"
  started=$(grep -c "cold start" "$BENCH_TMP/rouse-data/logs/burst-dev-fn.log" || true)
  live=$(bench_instance_pids fn | wc -l)
  echo "instances started $started (maxInstances $MAX_INSTANCES); live now $live"
  if [ "$started" -le "$MAX_INSTANCES" ]; then echo "goal instances <= max: meets"; else echo "goal instances <= max: MISSES"; fi
} | tee "$T/table.txt"
BENCH_GROUPS="$(bench_instance_pids fn | tr '\n' ' ')"

if [ -z "${NO_RECORD:-}" ]; then
  bench_record "burst of $REQUESTS to a cold function" "$COMMAND" "$T/table.txt"
fi
