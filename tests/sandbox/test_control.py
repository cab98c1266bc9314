"""The JSON control API and the HTML control page."""

from __future__ import annotations

import requests

from .lina_client import call, login


def test_state_overview(sandbox):
    state = sandbox.state()
    assert {a["username"] for a in state["lina_accounts"]} == {"demo-shop", "second-shop"}
    assert {c["username"] for c in state["allsafe_campaigns"]} >= {"demo-allsafe", "novault-allsafe"}
    assert (
        state["faults"] == [] and state["journal_entries"] == 0 and state["maintenance"]["enabled"] is False
    )
    assert "demo-lina-password" not in str(state) and "demo-lina-shared-key" not in str(state)


def test_reset_restores_the_demo_data_or_empties_everything(sandbox):
    call(sandbox, "redeem", hash=login(sandbox), code="DEMOPARTIAL50EUR", amount="10.00")
    sandbox.set_fault("lina", "ping", "http_500", count=None)
    sandbox.reset()
    assert sandbox.token("DEMOPARTIAL50EUR")["remaining"] == "50.00"
    assert sandbox.faults() == [] and sandbox.journal() == []
    sandbox.reset(seed=False)
    assert sandbox.tokens() == [] and sandbox.stock() == []
    assert call(sandbox, "login", user="demo-shop", **{"pass": "x"}).status_code == 400
    sandbox.control("POST", "seed")
    assert len(sandbox.tokens("demo-shop")) == 10


def test_tokens_can_be_added_in_any_state_and_read_back(sandbox):
    token = sandbox.add_token(
        "test-0000-0000-0001", "80", remaining="12.5", valid_until=-1, full_value_only=True
    )
    assert token["code"] == "TEST000000000001"
    assert (token["original"], token["remaining"], token["full_value_only"]) == ("80.00", "12.50", True)
    assert sandbox.token("TEST000000000001") == token
    assert sandbox.token("NOPE") is None
    generated = sandbox.add_token(value=5, account="second-shop", valid_until="2030-01-31")
    assert len(generated["code"]) == 16 and generated["valid_until"] == "2030-01-31"
    assert generated in sandbox.tokens("second-shop")


def test_journal_filters(sandbox):
    session = login(sandbox)
    call(sandbox, "redeem", hash=session, code="DEMOPARTIAL50EUR", amount="10.00")
    call(sandbox, "redeem", hash=session, code="DEMOPARTIAL50EUR", amount="99.00")
    requests.post(
        f"{sandbox.allsafe_url}/allocate",
        json={"vendor": "Checkers", "value": 50, "reference": "j1"},
        auth=("demo-allsafe", "demo-allsafe-password"),
        timeout=5,
    )
    everything = sandbox.journal()
    assert [(e["provider"], e["operation"]) for e in everything] == [
        ("lina", "redeem"),
        ("lina", "redeem"),
        ("allsafe", "allocate"),
    ]
    assert [e["seq"] for e in everything] == sorted(e["seq"] for e in everything)
    assert len(sandbox.journal(applied=True)) == 2
    assert len(sandbox.journal("lina", applied=False)) == 1
    assert sandbox.control("GET", "journal", since=everything[1]["seq"]) == everything[2:]
    assert all(e["account"] for e in everything) and all(e["at"] for e in everything)
    sandbox.control("DELETE", "journal")
    assert sandbox.journal() == []


def test_bad_control_requests_are_400_or_404(sandbox):
    url = f"{sandbox.url}/_sandbox"
    for method, path, body in [
        ("POST", "faults", {"provider": "lina", "operation": "ping", "kind": "explode"}),
        ("POST", "faults", {"provider": "lina", "operation": "allocate", "kind": "http_500"}),
        ("POST", "faults", {"provider": "nope", "kind": "http_500"}),
        ("POST", "faults", {"provider": "lina", "kind": "http_500", "count": 0}),
        ("POST", "tokens", {"account": "nobody"}),
        ("POST", "tokens", {"value": "lots"}),
        ("POST", "stock", {"vendor": "X", "value": 1, "count": -1}),
        ("POST", "lina/accounts", {"username": "demo-shop", "recipe": "sha1(password)"}),
        ("POST", "lina/accounts", {"username": "demo-shop", "fail_threshold": "many"}),
        ("POST", "allsafe/campaigns", {"username": "demo-allsafe", "status": "sleeping"}),
        ("POST", "maintenance", {"spelling": "Wartung"}),
    ]:
        response = requests.request(method, f"{url}/{path}", json=body, timeout=5)
        assert response.status_code == 400, (path, body, response.text)
        assert response.json()["error"]
    assert requests.post(f"{url}/faults", data="{", timeout=5).status_code == 400
    assert requests.get(f"{url}/nothing-here", timeout=5).status_code == 404
    assert requests.put(f"{url}/faults", timeout=5).status_code == 405
    assert requests.delete(f"{url}/faults/999", timeout=5).status_code == 404


def test_faults_are_listed_and_removed_one_by_one(sandbox):
    first = sandbox.set_fault("lina", "ping", "latency", ms=10, count=None)
    sandbox.set_fault("allsafe", "allocate", "lost_answer", count=3)
    assert [(f["kind"], f["count"], f["permanent"]) for f in sandbox.faults()] == [
        ("latency", None, True),
        ("lost_answer", 3, False),
    ]
    sandbox.control("DELETE", f"faults/{first['id']}")
    assert [f["kind"] for f in sandbox.faults()] == ["lost_answer"]
    sandbox.clear_faults("lina")
    assert len(sandbox.faults()) == 1
    sandbox.clear_faults()
    assert sandbox.faults() == []


def test_latency_jitter_adds_a_random_share_per_call():
    """Load drills want 50-300 ms spreads: base latency plus 0..jitter ms, drawn per call."""
    from sandbox.state import Store

    store = Store()
    store.base_latency_ms, store.latency_jitter_ms = 50, 250
    drawn = {store.take_faults("lina", "checkcode")[0] for _ in range(200)}
    assert min(drawn) >= 50 and max(drawn) <= 300
    assert len(drawn) > 20  # really spread, not one value
    store.reset()
    assert store.take_faults("lina", "checkcode")[0] == 0


def test_latency_endpoint_sets_the_jitter(sandbox):
    assert sandbox.control("POST", "latency", {"ms": 5, "jitter_ms": 7}) == {"latency_ms": 5, "jitter_ms": 7}
    assert sandbox.control("POST", "latency", {"ms": 0}) == {"latency_ms": 0, "jitter_ms": 0}


def test_control_page_shows_the_state(sandbox):
    call(sandbox, "redeem", hash=login(sandbox), code="DEMOPARTIAL50EUR", amount="10.00")
    sandbox.set_fault("lina", "redeem", "lost_answer", count=2)
    for path in ("/", "/_sandbox/", "/_sandbox"):
        page = requests.get(sandbox.url + path, timeout=5)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        html = page.text
        assert "Sandbox providers" in html and "lost_answer" in html
        assert "DEMO-PART-IAL5-0EUR" in html and "Takealot" in html and "••••0EUR" in html


def test_control_page_forms_switch_faults_maintenance_latency_and_reset(sandbox):
    ui = f"{sandbox.url}/_sandbox/ui"
    form = {"target": "lina:checkcode", "kind": "http_500", "count": "2", "status": ""}
    response = requests.post(f"{ui}/fault", data=form, allow_redirects=False, timeout=5)
    assert response.status_code == 303 and response.headers["Location"] == "/_sandbox/"
    [fault] = sandbox.faults()
    assert (fault["provider"], fault["operation"], fault["kind"], fault["count"]) == (
        "lina",
        "checkcode",
        "http_500",
        2,
    )
    assert call(sandbox, "checkcode", hash=login(sandbox), code="X").status_code == 500

    requests.post(
        f"{ui}/fault", data={"target": "lina:*", "kind": "latency", "ms": "5", "permanent": "1"}, timeout=5
    )
    assert sandbox.faults()[-1]["permanent"] is True
    requests.post(f"{ui}/clear-faults", timeout=5)
    assert sandbox.faults() == []

    requests.post(f"{ui}/maintenance", data={"enabled": "1"}, timeout=5)
    assert call(sandbox, "ping").json() == {"status": "Maintenance"}
    requests.post(f"{ui}/maintenance", data={"enabled": "0"}, timeout=5)
    assert call(sandbox, "ping").json()["status"] == "OK"

    requests.post(f"{ui}/latency", data={"ms": "25"}, timeout=5)
    assert sandbox.state()["latency_ms"] == 25

    sandbox.add_token("ZZZZ000000000001")
    requests.post(f"{ui}/reset", timeout=5)
    assert sandbox.token("ZZZZ000000000001") is None and sandbox.state()["latency_ms"] == 0

    bad = requests.post(f"{ui}/fault", data={"target": "lina:ping", "kind": "explode"}, timeout=5)
    assert bad.status_code == 400 and "kind must be" in bad.text
    assert requests.post(f"{ui}/nothing", timeout=5).status_code == 404


def test_request_counts_include_faulted_calls_and_reset(sandbox):
    sandbox.set_fault("lina", "ping", "http_500")
    assert call(sandbox, "ping").status_code == 500
    assert call(sandbox, "ping").status_code == 200
    requests.get(f"{sandbox.allsafe_url}/availability", auth=("demo-allsafe", "wrong"), timeout=5)
    assert sandbox.request_count("lina", "ping") == 2
    assert sandbox.request_count("allsafe", "availability") == 1
    assert sandbox.request_count("lina", "redeem") == 0
    assert {"provider": "lina", "operation": "ping", "count": 2} in sandbox.state()["requests"]
    sandbox.control("DELETE", "requests")
    assert sandbox.request_count("lina", "ping") == 0
    call(sandbox, "ping")
    sandbox.reset()
    assert sandbox.control("GET", "requests") == []


def test_control_page_switches_session_rejection_lapsing_and_denied_scope(sandbox):
    ui = f"{sandbox.url}/_sandbox/ui"
    page = requests.get(f"{sandbox.url}/_sandbox/", timeout=5).text
    assert "400 + status error (documented)" in page and "Count DENIED per" in page

    requests.post(f"{ui}/session-rejection", data={"status": "401", "text": "Session expired"}, timeout=5)
    rejected = call(sandbox, "checkcode", hash="nope", code="DEMOHEALTHY00100")
    assert (rejected.status_code, rejected.json()["response"]) == (401, "Session expired")

    requests.post(f"{ui}/session-lapse", data={"username": "demo-shop", "session_max_uses": "1"}, timeout=5)
    [account] = [a for a in sandbox.state()["lina_accounts"] if a["username"] == "demo-shop"]
    assert account["session_max_uses"] == 1 and account["session_ip_bound"] is False
    session = login(sandbox)
    assert call(sandbox, "checkcode", hash=session, code="DEMOHEALTHY00100").status_code == 200
    assert call(sandbox, "checkcode", hash=session, code="DEMOHEALTHY00100").status_code == 401

    session = login(sandbox)
    requests.post(f"{ui}/expire-sessions", timeout=5)
    assert call(sandbox, "checkcode", hash=session, code="DEMOHEALTHY00100").status_code == 401

    requests.post(f"{ui}/client-ip", data={"ip": "198.51.100.4"}, timeout=5)
    assert call(sandbox, "ping").json()["myip"] == "198.51.100.4"

    requests.post(f"{ui}/denied", data={"scope": "account"}, timeout=5)
    assert sandbox.state()["lina_denied_scope"] == "account"
    bad = requests.post(f"{ui}/session-rejection", data={"status": "500"}, timeout=5)
    assert bad.status_code == 400
