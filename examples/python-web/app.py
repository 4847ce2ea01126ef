"""A plain web app: nothing in it knows about rouse.

It listens on $PORT (default 8000), as most platforms expect, and answers
every path with a small JSON document about the request it got.
"""

import json
import os
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.time()
HITS = 0


class Handler(BaseHTTPRequestHandler):
    # Keep-alive lets the platform reuse connections to this process.
    protocol_version = "HTTP/1.1"

    def _answer(self):
        global HITS
        HITS += 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        doc = {
            "message": os.environ.get("GREETING", "Hello from rouse"),
            "method": self.command,
            "path": self.path,
            "pid": os.getpid(),
            "hits": HITS,
            "uptime_s": round(time.time() - STARTED, 3),
            "body": body.decode("utf-8", "replace"),
            "forwarded_for": self.headers.get("X-Forwarded-For"),
            "host": self.headers.get("Host"),
        }
        payload = (json.dumps(doc) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer

    def log_message(self, fmt, *args):
        print("%s %s" % (self.address_string(), fmt % args), flush=True)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    print(f"listening on 127.0.0.1:{port}", flush=True)
    Server(("127.0.0.1", port), Handler).serve_forever()
