"""Benchmark of the LINA client against a tiny local LINA (run: .venv/bin/python bench/bench_providers.py).

Prints, in one run on one machine:
1. logins per 1,000 checks (target: 1) — the session hash is cached and reused;
2. the client's median overhead per check over a bare ``requests`` call to the same server
   (target: under 1 ms), as milliseconds and as a ratio.

The server is stdlib ``ThreadingHTTPServer`` on 127.0.0.1, port 0, speaking just enough LINA
(ping, login, checkcode). Logging stays on (the client's structured line and the redaction
filter are part of its cost) but goes to /dev/null. The cache is the project's configured one
(file-based by default, Redis with REDIS_URL), in a temporary directory.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("PORTAL_VAR_DIR", tempfile.mkdtemp(prefix="bench-providers-"))

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.core.cache import cache  # noqa: E402

from vouchers.providers.base import ProviderConfig  # noqa: E402
from vouchers.providers.lina import LinaClient  # noqa: E402

CHECKS = 1000
SAMPLES = 1000
SESSION = "b3nchb3nchb3nchb3nchb3nchb3nch00"
COUNTS = {"ping": 0, "login": 0, "checkcode": 0}
ANSWER = json.dumps(
    {
        "status": "OK",
        "response": "",
        "token": "Valid",
        "tokencode": "BENC-H000-0000-0001",
        "startwert": "50,00",
        "restwert": "20,00",
        "tokengueltig": "31.12.2099",
        "tokencomplete": 0,
    }
).encode()


class LinaHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real provider behind a load balancer

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        operation = self.path.rsplit("/", 1)[-1]
        COUNTS[operation] = COUNTS.get(operation, 0) + 1
        if operation == "ping":
            body = json.dumps({"status": "OK", "myip": "127.0.0.1"}).encode()
        elif operation == "login":
            body = json.dumps({"status": "OK", "hash": SESSION}).encode()
        elif form.get("hash") != SESSION:
            self._send(401, json.dumps({"status": "error", "response": "Hash ungültig"}).encode())
            return
        else:
            body = ANSWER
        self._send(200, body)

    def setup(self):
        super().setup()
        # Without this, headers and body leave in two segments and Nagle's algorithm meets the
        # client's delayed ACK: every answer would wait ~40 ms, hiding what is being measured.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, status: int, body: bytes):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self._headers_buffer.append(b"\r\n" + body)  # one write: headers and body together
        self.flush_headers()

    def log_message(self, format, *args):
        pass


def main() -> None:
    sink = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)

    server = ThreadingHTTPServer(("127.0.0.1", 0), LinaHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/lina/extern/tokenapi"
    config = ProviderConfig(
        campaign_id=999_001,
        provider="lina",
        base_url=base,
        username="bench",
        password="bench-password",  # noqa: S106 (a local benchmark account)
        shared_key="bench-key",
    )
    try:
        cache.clear()
        client = LinaClient(config)
        code = "BENCH00000000001"

        # 1. Logins per 1,000 checks (the cache starts empty: the first check logs in).
        started = time.perf_counter()
        for _ in range(CHECKS):
            client.check(code)
        elapsed = time.perf_counter() - started
        logins = COUNTS["login"]

        # 2. Median overhead per call over a bare requests call, interleaved to share any drift.
        bare = requests.Session()
        form = {"hash": SESSION, "code": code}
        for _ in range(50):  # warm both connection pools
            bare.post(f"{base}/checkcode", data=form, timeout=(3.05, 15))
            client.check(code)
        bare_ms, client_ms = [], []
        for _ in range(SAMPLES):
            t0 = time.perf_counter()
            response = bare.post(f"{base}/checkcode", data=form, timeout=(3.05, 15))
            response.json()
            t1 = time.perf_counter()
            client.check(code)
            t2 = time.perf_counter()
            bare_ms.append((t1 - t0) * 1000)
            client_ms.append((t2 - t1) * 1000)
        bare_median = statistics.median(bare_ms)
        client_median = statistics.median(client_ms)
        overhead = client_median - bare_median
    finally:
        server.shutdown()
        server.server_close()

    print("LINA client benchmark (local stdlib server on 127.0.0.1)")
    print(f"  cache backend                     : {django.conf.settings.CACHES['default']['BACKEND']}")
    print(f"  checks                            : {CHECKS} in {elapsed:.2f} s")
    print(
        f"  logins per 1,000 checks           : {logins * 1000 / CHECKS:.0f}  (target 1; ratio {logins / 1:.2f}x target)"
    )
    print(f"  pings per 1,000 checks            : {COUNTS['ping'] * 1000 / CHECKS:.0f}")
    print(f"  median bare requests call         : {bare_median:.3f} ms")
    print(f"  median client.check call          : {client_median:.3f} ms")
    print(
        f"  median client overhead per call   : {overhead:.3f} ms  (target < 1 ms; "
        f"{overhead / 1.0:.2f}x of target; client/bare ratio {client_median / bare_median:.2f})"
    )
    ok = logins == 1 and overhead < 1.0
    print("  result                            :", "targets met" if ok else "TARGET MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
