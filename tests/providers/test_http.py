"""The shared HTTP layer: pooled sessions, timeouts, retries, outcome classification, log lines.

Outcome classification is tested against real local sockets where it matters: a server that
accepts and hangs up after reading the request (sent, answer lost → OutcomeUnknown), a port
nobody listens on (refused → ProviderUnavailable, provably not sent), a server slower than the
read timeout (→ OutcomeUnknown).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError, ProtocolError

from portal.processes import closed_port_url
from vouchers.providers import http
from vouchers.providers.errors import Misconfigured, OutcomeUnknown, ProviderUnavailable
from vouchers.providers.http import Transport, never_sent, session_for

from .conftest import leaked_values


class RawServer:
    """A TCP server on 127.0.0.1:0 that reads one request per connection, then ``behaviour``."""

    def __init__(self, behaviour: str, delay: float = 0.0):
        self.behaviour = behaviour
        self.delay = delay
        self.connections = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)  # the whole request arrived: it was sent
                except OSError:
                    continue
                if self.behaviour == "slow":
                    time.sleep(self.delay)
                    with contextlib.suppress(OSError):
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                # "hang_up": close without a byte of answer

    def close(self):
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def raw_server(request):
    servers = []

    def start(behaviour, delay=0.0):
        server = RawServer(behaviour, delay)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def transport(base_url: str, **kwargs) -> Transport:
    options = {"connect_timeout": 1.0, "read_timeout": 2.0} | kwargs
    return Transport(provider="lina", campaign_id=3, base_url=base_url, **options)


# --- Outcome classification on real sockets ------------------------------------------------------


def test_connection_dropped_after_sending_is_outcome_unknown_and_never_resent(raw_server):
    server = raw_server("hang_up")
    with pytest.raises(OutcomeUnknown):
        transport(server.url).request("redeem", "POST", "redeem", form={"amount": "1.00"}, money_moving=True)
    assert server.connections == 1


def test_a_dropped_read_is_retried_a_bounded_number_of_times(raw_server):
    server = raw_server("hang_up")
    with pytest.raises(OutcomeUnknown):
        transport(server.url).request("checkcode", "POST", "checkcode", form={}, money_moving=False)
    assert server.connections == 3


def test_read_timeout_is_outcome_unknown(raw_server):
    server = raw_server("slow", delay=1.0)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown):
        transport(server.url, read_timeout=0.2).request(
            "redeem", "POST", "redeem", form={}, money_moving=True
        )
    assert time.monotonic() - started < 1.0


def test_refused_connection_is_unavailable_not_sent():
    url = closed_port_url()
    with pytest.raises(ProviderUnavailable) as caught:
        transport(url).request("redeem", "POST", "redeem", form={}, money_moving=True)
    assert not isinstance(caught.value, OutcomeUnknown)


@pytest.mark.parametrize(
    ("raised", "error"),
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), ProviderUnavailable),
        (
            requests.exceptions.ConnectionError(
                MaxRetryError(
                    None, "/", NameResolutionError("lina.test", None, socket.gaierror(-2, "Name unknown"))
                )
            ),
            ProviderUnavailable,
        ),
        (requests.exceptions.ReadTimeout("read timed out"), OutcomeUnknown),
        # A bare ConnectionError proves nothing about whether the request left: unknown.
        (requests.exceptions.ConnectionError("Connection reset by peer"), OutcomeUnknown),
        (
            requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError())),
            OutcomeUnknown,
        ),
        (requests.exceptions.ChunkedEncodingError("broken body"), OutcomeUnknown),
        (requests.exceptions.SSLError("handshake failed"), ProviderUnavailable),
    ],
)
def test_transport_exceptions_are_classified(mocked, raised, error):
    mocked.post("https://lina.test/x/redeem", body=raised)
    with pytest.raises(error) as caught:
        transport("https://lina.test/x").request("redeem", "POST", "redeem", form={}, money_moving=True)
    assert type(caught.value) is error


# --- Answers to money-moving calls -----------------------------------------------------------------

HTML = "text/html"
JSON = "application/json"


@pytest.mark.parametrize(
    ("status", "body", "content_type", "definite", "money_outcome"),
    [
        (200, '{"resp": "OK"}', JSON, (), "answer"),
        (400, '{"status": "error"}', JSON, (), "answer"),
        (404, '{"detail": "Not Found"}', JSON, (), "answer"),  # a readable refusal
        (492, "<html>No vouchers</html>", HTML, (492,), "answer"),  # documented: definite by number
        (401, "", JSON, (401,), "answer"),
        (500, '{"status": "error"}', JSON, (), "unknown"),  # a 500 may come after the provider acted
        (500, "Internal Server Error", "text/plain", (), "unknown"),
        (502, "<html>Bad Gateway</html>", HTML, (), "unknown"),  # a proxy's page after forwarding
        (504, "", HTML, (), "unknown"),
        (503, '{"detail": "busy"}', JSON, (503,), "answer"),  # only if a provider documents it
        (200, "<html>proxy login</html>", HTML, (), "unknown"),
        (200, '{"status": "OK", "tok', JSON, (), "unknown"),  # malformed JSON
        (200, "", JSON, (), "unknown"),
        (302, "", HTML, (), "unknown"),  # a redirect may follow a completed POST
        (404, "<html>Not Found</html>", HTML, (), "unknown"),
    ],
)
def test_money_moving_answers_are_definite_only_when_readable(
    mocked, status, body, content_type, definite, money_outcome
):
    mocked.post("https://lina.test/x/redeem", status=status, body=body, content_type=content_type)
    mocked.post("https://lina.test/x/checkcode", status=status, body=body, content_type=content_type)
    send = transport("https://lina.test/x").request
    if money_outcome == "unknown":
        with pytest.raises(OutcomeUnknown) as caught:
            send("redeem", "POST", "redeem", form={}, money_moving=True, definite_statuses=definite)
        assert caught.value.status_code == status and caught.value.what_to_check
        assert "<" not in caught.value.message
    else:
        assert (
            send("redeem", "POST", "redeem", form={}, money_moving=True, definite_statuses=definite).status
            == status
        )
    assert len(mocked.calls) == 1  # never resent
    # A read gets every answer back for its provider module to map (unavailable), retried on 5xx.
    assert send("checkcode", "POST", "checkcode", form={}, money_moving=False).status == status


def test_unusable_answer_is_unknown_for_money_and_unexpected_for_reads():
    answer = http.HttpAnswer(200, b"[]", [], True, 1.0)
    money = http.unusable_answer(answer, provider="lina", operation="redeem", money_moving=True, reason="x")
    read = http.unusable_answer(
        answer, provider="lina", operation="checkcode", money_moving=False, reason="x"
    )
    assert type(money) is OutcomeUnknown and "not known whether" in money.message
    assert isinstance(read, ProviderUnavailable) and not isinstance(read, OutcomeUnknown)
    assert money.detail == "lina redeem: HTTP 200, x"


def test_never_sent_looks_through_the_exception_chain():
    inner = NameResolutionError("h", None, socket.gaierror())
    assert never_sent(requests.exceptions.ConnectionError(MaxRetryError(None, "/", inner)))
    assert not never_sent(requests.exceptions.ConnectionError("reset"))


def test_a_bad_base_url_is_misconfigured():
    with pytest.raises(Misconfigured):
        transport("lina.test/no-scheme").request("ping", "POST", "ping", form={}, money_moving=False)


# --- Retries, timeouts, pooling --------------------------------------------------------------------


def test_reads_back_off_with_jitter_and_money_calls_do_not_retry(mocked, settings, monkeypatch):
    settings.PROVIDER_RETRY_BACKOFF_SECONDS = 0.5
    delays = []
    monkeypatch.setattr(http.time, "sleep", delays.append)
    mocked.post("https://lina.test/x/checkcode", status=503, body="busy")
    mocked.post("https://lina.test/x/redeem", status=503, body="busy")
    answer = transport("https://lina.test/x").request(
        "checkcode", "POST", "checkcode", form={}, money_moving=False
    )
    assert answer.status == 503
    assert len(delays) == 2
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 1.5  # 0.5·2^n plus up to 0.5 of jitter
    delays.clear()
    with pytest.raises(OutcomeUnknown):  # a 5xx to a money-moving call: reconcile, never resend
        transport("https://lina.test/x").request("redeem", "POST", "redeem", form={}, money_moving=True)
    assert delays == []
    assert [c.request.url.rsplit("/", 1)[1] for c in mocked.calls] == ["checkcode"] * 3 + ["redeem"]


def test_timeouts_come_from_the_configuration(mocked):
    mocked.post("https://lina.test/x/ping", json={"status": "OK"})
    transport("https://lina.test/x", connect_timeout=1.5, read_timeout=7.0).request(
        "ping", "POST", "ping", form={}, money_moving=False
    )
    assert mocked.calls[0].request.req_kwargs["timeout"] == (1.5, 7.0)


def test_one_session_per_base_url_and_process(monkeypatch):
    first = session_for("https://one.test/api")
    assert session_for("https://one.test/api") is first
    assert session_for("https://two.test/api") is not first
    monkeypatch.setattr(http.os, "getpid", lambda: -1)  # as in a forked worker
    assert session_for("https://one.test/api") is not first


def test_sessions_never_keep_cookies(mocked):
    mocked.post("https://lina.test/x/ping", json={"status": "OK"}, headers={"Set-Cookie": "sid=abc; Path=/"})
    transport("https://lina.test/x").request("ping", "POST", "ping", form={}, money_moving=False)
    assert len(session_for("https://lina.test/x").cookies) == 0


# --- Logs ------------------------------------------------------------------------------------------


def test_one_structured_line_per_call(mocked, caplog):
    mocked.post("https://lina.test/x/checkcode", json={"status": "OK"})
    transport("https://lina.test/x").request(
        "checkcode", "POST", "checkcode", form={"code": "X"}, money_moving=False
    )
    records = [r for r in caplog.records if r.name == "vouchers.providers"]
    assert len(records) == 1
    record = records[0]
    assert (record.provider, record.campaign_id, record.operation, record.http_status) == (
        "lina",
        3,
        "checkcode",
        200,
    )
    assert record.elapsed_ms >= 0 and record.outcome == "answered"
    assert "operation=checkcode status=200" in record.getMessage()


def test_a_non_json_body_is_excerpted_in_the_log_only_and_redacted(mocked, caplog, sensitive):
    code = "QWER7890TYUI1234"
    sensitive.append(code)
    secret_page = f"<html><p>Bad gateway</p><!-- pass=hunter2 user {code} Shared-Key-never-logged --></html>"
    sensitive.append("hunter2")
    mocked.post("https://lina.test/x/checkcode", status=502, body=secret_page, content_type="text/html")
    lina = transport("https://lina.test/x", secrets=("Shared-Key-never-logged",))
    answer = lina.request("checkcode", "POST", "checkcode", form={}, money_moving=False, secrets=(code,))
    assert answer.is_json is False and answer.data is None
    line = next(r for r in caplog.records if r.name == "vouchers.providers").getMessage()
    assert "Bad gateway" in line and "outcome=not-json" in line
    with pytest.raises(OutcomeUnknown) as caught:  # the same page answering a money-moving call
        lina.request("checkcode", "POST", "checkcode", form={}, money_moving=True, secrets=(code,))
    assert "Bad gateway" not in caught.value.message and "Bad gateway" not in caught.value.detail
    # The autouse guard fails the test if the password, code or shared key are in any record.


def test_basic_auth_credentials_never_reach_the_log(mocked, caplog, sensitive):
    mocked.get("https://allsafe.test/api/availability", json=[])
    Transport(
        provider="allsafe",
        campaign_id=1,
        base_url="https://allsafe.test/api",
        connect_timeout=1,
        read_timeout=1,
        auth=("user", "Basic-pass-never-logged"),
    ).request("availability", "GET", "availability", money_moving=False)
    sensitive.append("Basic-pass-never-logged")
    assert any(r.name == "vouchers.providers" for r in caplog.records)
    assert caplog.records[-1].levelno == logging.INFO
    assert mocked.calls[0].request.headers["Authorization"].startswith("Basic ")


def test_the_log_guard_finds_a_leak():
    record = logging.LogRecord("x", logging.INFO, "", 0, "code %s", ("ABCDEFGH12345678",), None)
    record.extra_field = "Shared-Key-never-logged"
    assert leaked_values([record], ["ABCDEFGH12345678", "Shared-Key-never-logged", "absent-value"]) == [
        "ABCDEFGH12345678",
        "Shared-Key-never-logged",
    ]


# --- The environment, read once per session ---------------------------------------------------


class _RecordingAdapter(requests.adapters.HTTPAdapter):
    """Answers every request itself and keeps the proxies requests chose for it."""

    def __init__(self):
        super().__init__()
        self.proxies: list[dict] = []

    def send(self, request, **kwargs):
        self.proxies.append(dict(kwargs.get("proxies") or {}))
        response = requests.Response()
        response.status_code, response._content, response.url = 200, b"{}", request.url
        return response


def _fresh_session(monkeypatch, base_url: str) -> tuple[requests.Session, _RecordingAdapter]:
    monkeypatch.setattr(http, "_sessions", {})
    session = session_for(base_url)
    adapter = _RecordingAdapter()
    session.mount("https://", adapter)
    return session, adapter


def test_proxies_are_read_once_per_session_and_honoured(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    reads = []
    real = http.get_environ_proxies
    monkeypatch.setattr(http, "get_environ_proxies", lambda url: reads.append(url) or real(url))
    scans = []
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", lambda *a, **k: scans.append(a) or {})
    session, adapter = _fresh_session(monkeypatch, "https://lina.test/api")
    for _ in range(3):
        session.request("POST", "https://lina.test/api/checkcode", data={}, timeout=(1, 1))
    assert reads == ["https://lina.test/api"]  # once, when the session was made
    assert scans == []  # requests itself no longer scans the environment per call
    assert [p.get("https") for p in adapter.proxies] == ["http://proxy.test:3128"] * 3
    # A changed environment is not seen by this session (a new process reads it again).
    monkeypatch.setenv("HTTPS_PROXY", "http://other.test:3128")
    session.request("POST", "https://lina.test/api/checkcode", data={}, timeout=(1, 1))
    assert adapter.proxies[-1].get("https") == "http://proxy.test:3128"


def test_no_proxy_is_honoured_for_the_sessions_host(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "lina.test")
    session, adapter = _fresh_session(monkeypatch, "https://lina.test/api")
    session.request("POST", "https://lina.test/api/checkcode", data={}, timeout=(1, 1))
    assert adapter.proxies == [{}]
    other, other_adapter = _fresh_session(monkeypatch, "https://allsafe.test/api")
    other.request("POST", "https://allsafe.test/api/x", data={}, timeout=(1, 1))
    assert other_adapter.proxies[0].get("https") == "http://proxy.test:3128"


def test_a_ca_bundle_from_the_environment_is_kept(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setattr(http, "_sessions", {})
    assert session_for("https://lina.test/api").verify == "/etc/ssl/certs/ca-certificates.crt"
