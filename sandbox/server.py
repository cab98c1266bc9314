"""The HTTP server: one thread per connection (daemon threads), routing, and fault injection.

Routes
  POST /lina/extern/tokenapi/<name>   LINA (also /extern/tokenapi/<name>)
  GET  /lina/voucher/<ref>            printable voucher page LINA's layouthttp points at
  GET  /allsafe/availability, POST /allsafe<allocate path>   Allsafe
  GET  / and /_sandbox/               control page;  /_sandbox/<endpoint>  JSON control API

Faults are applied around the provider handlers only: latency sleeps before the call is handled;
http_500 / html_error / malformed_json / denied answer instead of handling it (unless ``apply``);
lost_answer and hang handle the call first (the money moves), then close the connection without
a byte, or sleep past the client's timeout before answering.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote

from .allsafe import Allsafe
from .control import Control
from .formats import berlin_today
from .lina import Lina
from .pages import control_action, control_page, voucher_page
from .replies import REASONS, Reply
from .state import Fault, Store

MAX_BODY = 1024 * 1024
LINA_PREFIXES = ("/lina/extern/tokenapi/", "/extern/tokenapi/")

HTML_ERROR = (
    "<html><head><title>{status} Bad Gateway</title></head><body><center><h1>{status} Bad Gateway</h1>"
    "</center><hr><center>nginx</center></body></html>"
)


class LostAnswer(Exception):
    """Close the connection without sending anything."""


def fault_reply(fault: Fault) -> Reply:
    if fault.kind == "http_500":
        return Reply(fault.status or 500, b"Internal Server Error", "text/plain; charset=utf-8")
    if fault.kind == "html_error":
        status = fault.status or 502
        return Reply.html(HTML_ERROR.format(status=status), status)
    if fault.kind == "malformed_json":
        return Reply(fault.status or 200, b'{"status": "OK", "token": "Val', "application/json")
    return Reply.json({"status": "DENIED"}, fault.status or 200)


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True  # a hanging request never keeps the process alive
    allow_reuse_address = True
    request_queue_size = 1024  # ≥ 200 concurrent slow clients must all get through

    def __init__(self, address: tuple[str, int], store: Store, *, quiet: bool = False):
        self.store = store
        self.quiet = quiet
        self.stopping = threading.Event()
        self.lina = Lina(store)
        self.allsafe = Allsafe(store)
        self.control = Control(store)
        super().__init__(address, SandboxHandler)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def server_close(self) -> None:
        self.stopping.set()  # wakes hanging requests
        super().server_close()


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the portal's client reuses connections
    server_version = "ProviderSandbox/1.0"
    timeout = 120  # an idle keep-alive connection gives its thread back after two minutes
    server: SandboxServer

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes; without NODELAY a keep-alive client waits
        # ~40 ms per call for the delayed ACK (Nagle), which would dwarf the portal's own overhead.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def log_message(self, format, *args):
        if not self.server.quiet:
            sys.stderr.write(f"sandbox {self.address_string()} {format % args}\n")

    # --- routing ------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._send(Reply.json({"detail": "bad Content-Length"}, 400))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        path = unquote(path)
        try:
            self._route(path, query, body)
        except LostAnswer:
            self._drop()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout during a hang)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            with contextlib.suppress(OSError):
                self._send(Reply.json({"detail": "sandbox error"}, 500))

    def _route(self, path: str, query: str, body: bytes) -> None:
        method = self.command
        lina_prefix = next((p for p in LINA_PREFIXES if path.startswith(p)), None)
        if lina_prefix:
            name = path.removeprefix(lina_prefix).strip("/").lower()
            if method != "POST":
                return self._send(Reply.json({"status": "error", "response": "Nur POST erlaubt"}, 405))
            form = {
                k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()
            }
            ip = self.client_address[0]
            return self._provider_call(
                "lina",
                name,
                lambda fault: self.server.lina.handle(
                    name, form, ip=ip, base_url=self._base_url(), fault=fault
                ),
            )
        if path == "/allsafe" or path.startswith("/allsafe/"):
            sub = path.removeprefix("/allsafe") or "/"
            operation = "availability" if method == "GET" else "allocate"
            return self._provider_call(
                "allsafe",
                operation,
                lambda fault: self.server.allsafe.handle(
                    method,
                    sub.rstrip("/") or "/",
                    authorization=self.headers.get("Authorization", ""),
                    body=body,
                    today=berlin_today(),
                    fault=fault,
                ),
            )
        if path.startswith("/lina/voucher/") and method == "GET":
            return self._send(voucher_page(self.server.store, path.removeprefix("/lina/voucher/")))
        if path in ("/", "/_sandbox", "/_sandbox/") and method == "GET":
            return self._send(control_page(self.server.store, self._base_url()))
        if path.startswith("/_sandbox/ui/") and method == "POST":
            return self._send(control_action(self.server.store, path.removeprefix("/_sandbox/ui/"), body))
        if path.startswith("/_sandbox/"):
            return self._send(
                self.server.control.handle(method, path.removeprefix("/_sandbox/"), query, body)
            )
        return self._send(Reply.json({"detail": "Not Found"}, 404))

    def _provider_call(self, provider: str, operation: str, handle) -> None:
        self.server.store.count_request(provider, operation)
        latency_ms, fault = self.server.store.take_faults(provider, operation)
        if latency_ms:
            time.sleep(latency_ms / 1000)  # never under the store's lock
        kind = fault.kind if fault else ""
        if fault and kind in ("http_500", "html_error", "malformed_json", "denied") and not fault.apply:
            return self._send(fault_reply(fault))
        reply = handle(
            kind if kind in ("lost_answer", "hang", "http_500", "html_error", "malformed_json") else ""
        )
        if kind == "lost_answer":
            raise LostAnswer
        if kind == "hang":
            self.server.stopping.wait(fault.seconds)
        elif fault and fault.apply:
            reply = fault_reply(fault)
        return self._send(reply)

    def _base_url(self) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}"

    # --- output -------------------------------------------------------------------------------
    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status, REASONS.get(reply.status))
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status not in (204, 304):
            self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if reply.body and self.command != "HEAD":
            self.wfile.write(reply.body)

    def _drop(self) -> None:
        """Close the socket without a status line, as a connection lost after the work was done."""
        self.close_connection = True
        self.log_message('"%s" answer dropped (lost_answer fault)', self.requestline)
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def start_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    store: Store | None = None,
    seed: bool = True,
    quiet: bool = True,
) -> tuple[SandboxServer, threading.Thread]:
    """Start a sandbox in a daemon thread of this process (tests, benchmarks); port 0 picks a free one."""
    from .seed import seed_demo

    store = store or Store()
    if seed:
        seed_demo(store)
    server = SandboxServer((host, port), store, quiet=quiet)
    thread = threading.Thread(target=server.serve_forever, name="sandbox-server", daemon=True)
    thread.start()
    return server, thread


def stop(server: SandboxServer) -> None:
    server.stopping.set()
    server.shutdown()
    server.server_close()
