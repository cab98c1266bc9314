"""Fault injection per provider and operation, seen from a plain HTTP client."""

from __future__ import annotations

import json
import time

import pytest
import requests

from .lina_client import call, login

DEMO_AUTH = ("demo-allsafe", "demo-allsafe-password")


def _allocate(sandbox, reference="r1", timeout=5):
    return requests.post(
        f"{sandbox.allsafe_url}/allocate",
        json={"vendor": "Takealot", "value": 100, "reference": reference},
        auth=DEMO_AUTH,
        timeout=timeout,
    )


def _takealot_100(sandbox):
    return sum(
        r["count"] for r in sandbox.stock("demo-allsafe") if (r["vendor"], r["value"]) == ("Takealot", 100)
    )


def test_latency_delays_only_the_chosen_operation(sandbox):
    sandbox.set_fault("lina", "ping", "latency", ms=400, count=None)
    started = time.monotonic()
    assert call(sandbox, "ping").json()["status"] == "OK"
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    login(sandbox)  # ping (slow) + login (not slow)
    assert 0.4 <= time.monotonic() - started < 0.8


def test_default_latency_applies_to_every_provider_call(sandbox):
    sandbox.set_latency(300)
    started = time.monotonic()
    requests.get(f"{sandbox.allsafe_url}/availability", auth=DEMO_AUTH, timeout=5)
    assert time.monotonic() - started >= 0.3
    sandbox.set_latency(0)


def test_lost_answer_applies_the_redeem_then_drops_the_connection(sandbox):
    session = login(sandbox)
    sandbox.set_fault("lina", "redeem", "lost_answer")
    with pytest.raises(requests.ConnectionError):
        call(sandbox, "redeem", hash=session, code="DEMOPARTIAL50EUR", amount="20.00")
    assert sandbox.token("DEMOPARTIAL50EUR")["remaining"] == "30.00"  # the money moved
    [entry] = sandbox.journal("lina", "redeem")
    assert (entry["applied"], entry["fault"], entry["balance_after"]) == (True, "lost_answer", "30.00")
    # The fault was for one call: the reconciling checkcode gets its answer.
    assert call(sandbox, "checkcode", hash=session, code="DEMOPARTIAL50EUR").json()["restwert"] == "30,00"


def test_lost_answer_sends_not_even_a_status_line(sandbox):
    import socket

    sandbox.set_fault("lina", "ping", "lost_answer")
    host, port = sandbox.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /lina/extern/tokenapi/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert sock.recv(1024) == b""  # closed without a byte


def test_lost_answer_applies_a_purchase(sandbox):
    session = login(sandbox)
    before = len(sandbox.tokens())
    sandbox.set_fault("lina", "purchase", "lost_answer")
    with pytest.raises(requests.ConnectionError):
        call(sandbox, "purchase", hash=session, amount="15.00", tokens="0d4e7a9c2f6b1835")
    assert len(sandbox.tokens()) == before + 1
    assert sandbox.journal("lina", "purchase")[0]["fault"] == "lost_answer"


def test_lost_answer_applies_an_allocate(sandbox):
    sandbox.set_fault("allsafe", "allocate", "lost_answer")
    with pytest.raises(requests.ConnectionError):
        _allocate(sandbox, "lost-1")
    assert _takealot_100(sandbox) == 29
    [entry] = sandbox.journal("allsafe", "allocate")
    assert (entry["reference"], entry["applied"], entry["fault"]) == ("lost-1", True, "lost_answer")


def test_hang_applies_and_answers_only_after_the_clients_timeout(sandbox):
    session = login(sandbox)
    sandbox.set_fault("lina", "redeem", "hang", seconds=1.5)
    with pytest.raises(requests.ReadTimeout):
        call(sandbox, "redeem", hash=session, code="DEMOPARTIAL50EUR", amount="5.00", timeout=0.5)
    assert sandbox.token("DEMOPARTIAL50EUR")["remaining"] == "45.00"
    assert sandbox.journal("lina", "redeem")[0]["fault"] == "hang"
    # A patient client gets the real answer.
    sandbox.set_fault("lina", "ping", "hang", seconds=0.3)
    started = time.monotonic()
    assert call(sandbox, "ping").json()["status"] == "OK"
    assert time.monotonic() - started >= 0.3


def test_http_500_does_not_apply_unless_asked(sandbox):
    session = login(sandbox)
    sandbox.set_fault("lina", "redeem", "http_500")
    response = call(sandbox, "redeem", hash=session, code="DEMOPARTIAL50EUR", amount="5.00")
    assert response.status_code == 500
    assert sandbox.token("DEMOPARTIAL50EUR")["remaining"] == "50.00"
    sandbox.set_fault("lina", "redeem", "http_500", apply=True)
    assert call(sandbox, "redeem", hash=session, code="DEMOPARTIAL50EUR", amount="5.00").status_code == 500
    assert sandbox.token("DEMOPARTIAL50EUR")["remaining"] == "45.00"
    assert sandbox.journal("lina", "redeem")[0]["fault"] == "http_500"


def test_html_error_page_from_a_proxy(sandbox):
    sandbox.set_fault("allsafe", "availability", "html_error")
    response = requests.get(f"{sandbox.allsafe_url}/availability", auth=DEMO_AUTH, timeout=5)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html>" in response.text and "Bad Gateway" in response.text
    sandbox.set_fault("lina", "checkcode", "html_error", status=200)
    response = call(sandbox, "checkcode", hash=login(sandbox), code="DEMOPARTIAL50EUR")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_malformed_json(sandbox):
    sandbox.set_fault("lina", "ping", "malformed_json")
    response = call(sandbox, "ping")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    sandbox.set_fault("allsafe", "allocate", "malformed_json")
    with pytest.raises(ValueError):
        _allocate(sandbox).json()
    assert _takealot_100(sandbox) == 30


def test_denied_fault(sandbox):
    session = login(sandbox)
    sandbox.set_fault("lina", "redeem", "denied")
    response = call(sandbox, "redeem", hash=session, code="DEMOPARTIAL50EUR", amount="5.00")
    assert (response.status_code, response.json()) == (200, {"status": "DENIED"})
    sandbox.set_fault("lina", "*", "denied", status=403)
    assert call(sandbox, "ping").status_code == 403
    assert sandbox.token("DEMOPARTIAL50EUR")["remaining"] == "50.00"


def test_denied_is_not_an_allsafe_fault(sandbox):
    from tests.support.sandbox import SandboxError

    with pytest.raises(SandboxError):
        sandbox.set_fault("allsafe", "allocate", "denied")


def test_a_count_hits_the_next_n_calls_then_stops(sandbox):
    sandbox.set_fault("lina", "ping", "http_500", count=2)
    assert [call(sandbox, "ping").status_code for _ in range(3)] == [500, 500, 200]
    assert sandbox.faults() == []


def test_permanent_faults_stay_until_cleared_and_wildcards_hit_every_call(sandbox):
    sandbox.set_fault("allsafe", "*", "http_500", count=None, status=503)
    for _ in range(3):
        assert (
            requests.get(f"{sandbox.allsafe_url}/availability", auth=DEMO_AUTH, timeout=5).status_code == 503
        )
        assert _allocate(sandbox).status_code == 503
    assert call(sandbox, "ping").status_code == 200  # the other provider is untouched
    sandbox.clear_faults("allsafe")
    assert _allocate(sandbox).status_code == 200


def test_faults_only_hit_their_operation(sandbox):
    sandbox.set_fault("lina", "redeem", "http_500", count=None)
    session = login(sandbox)
    assert call(sandbox, "checkcode", hash=session, code="DEMOPARTIAL50EUR").status_code == 200
    assert call(sandbox, "redeem", hash=session, code="DEMOPARTIAL50EUR", amount="1.00").status_code == 500


def test_latency_stacks_with_another_fault(sandbox):
    sandbox.set_fault("lina", "ping", "latency", ms=300)
    sandbox.set_fault("lina", "ping", "http_500")
    started = time.monotonic()
    assert call(sandbox, "ping").status_code == 500
    assert time.monotonic() - started >= 0.3


def test_a_pooled_keep_alive_client_sees_the_lost_answer_once_and_never_resends(sandbox):
    with requests.Session() as http:
        ping = http.post(f"{sandbox.lina_url}/ping", timeout=5)
        assert ping.headers.get("Connection", "keep-alive").lower() != "close"
        session = login(sandbox)
        sandbox.set_fault("lina", "redeem", "lost_answer")
        with pytest.raises(requests.ConnectionError):
            http.post(
                f"{sandbox.lina_url}/redeem",
                data={"hash": session, "code": "DEMOPARTIAL50EUR", "amount": "7.00"},
                timeout=5,
            )
        assert len(sandbox.journal("lina", "redeem")) == 1
        assert http.post(f"{sandbox.lina_url}/ping", timeout=5).json()["status"] == "OK"  # a fresh connection
