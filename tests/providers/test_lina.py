"""LINA client: request shape, answers, every error row, the shared session and the DENIED cool-down."""

from __future__ import annotations

import hashlib
import time
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import responses
from django.core.cache import cache

from vouchers.providers.base import PurchaseRequest
from vouchers.providers.errors import (
    AuthFailed,
    Misconfigured,
    OutcomeUnknown,
    ProviderUnavailable,
    RateLimited,
    RedeemRefused,
    TokenInvalid,
    UnexpectedAnswer,
    ValidationFailed,
)
from vouchers.providers.lina import LinaClient, cooldown_key, login_pass, session_key

from .conftest import LINA_BASE, PASSWORD, PUBLIC_IP, SHARED_KEY, USERNAME, lina_config

CODE = "ABCD2345EFGH6789"
BASE = LINA_BASE
SESSION = "0f0e0d0c0b0a09080706050403020100"


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def form_of(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body or "", keep_blank_values=True).items()}


def with_session(mocked, sensitive, client: LinaClient, session_hash: str = SESSION) -> None:
    """Put a session hash in the shared cache, as a previous login would have."""
    sensitive.append(session_hash)
    cache.set(
        session_key(client.config.campaign_id),
        {"hash": session_hash, "ip": PUBLIC_IP, "fingerprint": client._fingerprint()},
    )


@pytest.fixture
def client() -> LinaClient:
    return LinaClient(lina_config())


# --- Login recipes and request shape ------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipe", "expected"),
    [
        ("md5(md5(password)+ip+key)", lambda pw, ip, key: md5(md5(pw) + ip + key)),
        ("md5(password+ip+key)", lambda pw, ip, key: md5(pw + ip + key)),
        ("md5(ip+md5(password)+key)", lambda pw, ip, key: md5(ip + md5(pw) + key)),
    ],
)
def test_login_recipes_are_lower_hex_md5_as_named(recipe, expected):
    value = login_pass(recipe, "pw", "198.51.100.2", "key")
    assert value == expected("pw", "198.51.100.2", "key")
    assert value == value.lower() and len(value) == 32


def test_unknown_recipe_is_misconfigured():
    with pytest.raises(Misconfigured):
        login_pass("sha1(everything)", "pw", "1.2.3.4", "key")


def test_ping_and_login_are_form_posts_with_the_configured_field_names(mocked, sensitive):
    mocked.post(f"{BASE}/ping", json={"status": "OK", "myip": "198.51.100.9"})
    mocked.post(f"{BASE}/login", json={"status": "OK", "hash": SESSION})
    sensitive.append(SESSION)
    client = LinaClient(
        lina_config(
            lina_login_user_field="benutzer",
            lina_login_pass_field="kennung",
            lina_hash_recipe="md5(password+ip+key)",
        )
    )
    assert client.login() == SESSION
    ping, login = mocked.calls
    assert ping.request.method == "POST" and ping.request.url == f"{BASE}/ping"
    assert login.request.method == "POST" and login.request.url == f"{BASE}/login"
    assert login.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    expected_pass = md5(PASSWORD + "198.51.100.9" + SHARED_KEY)
    sensitive.append(expected_pass)
    assert form_of(login) == {"benutzer": USERNAME, "kennung": expected_pass}
    assert cache.get(session_key(7))["ip"] == "198.51.100.9"


def test_checkcode_sends_hash_and_normalised_code_and_parses_every_field(mocked, sensitive, client):
    with_session(mocked, sensitive, client)
    mocked.post(
        f"{BASE}/checkcode",
        json={
            "status": "ok",
            "response": "",
            "token": "VALID",
            "tokencode": "ABCD-2345-EFGH-6789",
            "startwert": "1.234,50",
            "restwert": 20,
            "tokengueltig": "31.12.2027",
            "tokencomplete": "1",
            "filiale": "Mitte",
        },
    )
    info = client.check("abcd 2345-efgh 6789")
    assert form_of(mocked.calls[0]) == {"hash": SESSION, "code": CODE}
    assert mocked.calls[0].request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert info.code == CODE and info.display_code == "ABCD-2345-EFGH-6789"
    assert info.valid is True
    assert info.original_value == Decimal("1234.50") and info.remaining_value == Decimal("20")
    assert info.valid_until == date(2027, 12, 31)
    assert info.full_value_only is True
    assert info.raw["filiale"] == "Mitte"  # extra fields kept


def test_unknown_code_is_an_invalid_token_not_an_error(mocked, sensitive, client):
    with_session(mocked, sensitive, client)
    mocked.post(
        f"{BASE}/checkcode", json={"status": "OK", "token": "Invalid", "response": "Gutschein nicht gefunden"}
    )
    info = client.check(CODE)
    assert info.valid is False and info.remaining_value is None and info.valid_until is None
    assert info.message == "Gutschein nicht gefunden"
    assert info.display_code == "ABCD-2345-EFGH-6789"


def test_redeem_sends_amount_with_a_dot_and_two_decimals(mocked, sensitive, client):
    with_session(mocked, sensitive, client)
    mocked.post(
        f"{BASE}/redeem",
        json={"status": "OK", "token": "Valid", "resp": "ok", "amount_old": "50,00", "amount_new": "37,50"},
    )
    result = client.redeem(CODE, Decimal("12.5"))
    assert form_of(mocked.calls[0]) == {"hash": SESSION, "code": CODE, "amount": "12.50"}
    assert (result.balance_before, result.balance_after, result.amount) == (
        Decimal("50.00"),
        Decimal("37.50"),
        Decimal("12.5"),
    )


@pytest.mark.parametrize(
    "amount", [Decimal("0"), Decimal("-5"), Decimal("1.234"), Decimal("NaN"), Decimal("1e40")]
)
def test_unusable_amounts_are_refused_before_any_call(mocked, sensitive, client, amount):
    with_session(mocked, sensitive, client)
    with pytest.raises(ValidationFailed):
        client.redeem(CODE, amount)
    assert len(mocked.calls) == 0


def test_purchase_without_layout_sends_no_names(mocked, sensitive, client):
    with_session(mocked, sensitive, client)
    mocked.post(
        f"{BASE}/purchase",
        json={"status": "OK", "response": "", "code": "NEWC0DE0NEWC0DE0", "amount": "25.00"},
    )
    sensitive.append("NEWC0DE0NEWC0DE0")
    result = client.purchase(PurchaseRequest(Decimal("25"), "tmpl-hash", from_name="Ann", for_name="Bob"))
    assert form_of(mocked.calls[0]) == {"hash": SESSION, "amount": "25.00", "tokens": "tmpl-hash"}
    assert result.code == "NEWC0DE0NEWC0DE0" and result.amount == Decimal("25.00")
    assert result.qrcode_png_base64 == "" and result.layout_url == ""


def test_purchase_with_layout_sends_every_field(mocked, sensitive, client):
    with_session(mocked, sensitive, client)
    mocked.post(
        f"{BASE}/purchase",
        json={
            "status": "OK",
            "code": "NEWC0DE0NEWC0DE1",
            "amount": 30,
            "qrcode": "iVBORw0KGgo=",
            "layouthttp": "https://lina.test/l/1",
        },
    )
    sensitive.append("NEWC0DE0NEWC0DE1")
    request = PurchaseRequest(
        Decimal("30.00"), "tmpl", email="a@example.com", layout=3, from_name="Ann", for_name="Bob"
    )
    result = client.purchase(request)
    assert form_of(mocked.calls[0]) == {
        "hash": SESSION,
        "amount": "30.00",
        "tokens": "tmpl",
        "sendmail": "a@example.com",
        "layout": "3",
        "tokenfrom": "Ann",
        "tokenfor": "Bob",
    }
    assert result.qrcode_png_base64 == "iVBORw0KGgo=" and result.layout_url == "https://lina.test/l/1"


def test_layout_zero_sends_layout_but_no_names(mocked, sensitive, client):
    with_session(mocked, sensitive, client)
    mocked.post(f"{BASE}/purchase", json={"status": "OK", "code": "NEWC0DE0NEWC0DE2", "amount": "5.00"})
    sensitive.append("NEWC0DE0NEWC0DE2")
    client.purchase(PurchaseRequest(Decimal("5"), "tmpl", layout=0, from_name="Ann", for_name="Bob"))
    assert form_of(mocked.calls[0]) == {"hash": SESSION, "amount": "5.00", "tokens": "tmpl", "layout": "0"}


# --- Error rows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            {"status": "OK", "token": "Valid", "resp": "Err", "msg": "Restwert nicht ausreichend"},
            RedeemRefused,
        ),
        ({"status": "OK", "token": "Invalid", "resp": "ERR", "msg": "Gutschein ungültig"}, TokenInvalid),
    ],
)
def test_redeem_refusals_are_definite_rejections_with_the_reason(mocked, sensitive, client, answer, error):
    with_session(mocked, sensitive, client)
    mocked.post(f"{BASE}/redeem", json=answer)
    with pytest.raises(error) as caught:
        client.redeem(CODE, Decimal("10"))
    assert caught.value.message == answer["msg"]
    assert len(mocked.calls) == 1


@pytest.mark.parametrize(
    "answer",
    [{"status": "OK"}, {"status": "OK", "resp": "maybe"}, {"status": "OK", "resp": ["OK"]}],
)
def test_redeem_accepted_without_a_readable_resp_is_outcome_unknown(mocked, sensitive, client, answer):
    with_session(mocked, sensitive, client)
    mocked.post(f"{BASE}/redeem", json=answer)
    with pytest.raises(OutcomeUnknown):
        client.redeem(CODE, Decimal("10"))


def test_purchase_accepted_without_a_code_is_outcome_unknown(mocked, sensitive, client):
    with_session(mocked, sensitive, client)
    mocked.post(f"{BASE}/purchase", json={"status": "OK", "response": ""})
    with pytest.raises(OutcomeUnknown):
        client.purchase(PurchaseRequest(Decimal("5"), "tmpl"))


def test_http_400_error_is_validation_failed_with_the_providers_reason(mocked, sensitive, client):
    with_session(mocked, sensitive, client)
    mocked.post(f"{BASE}/purchase", status=400, json={"status": "error", "response": "Unbekannte Vorlage"})
    with pytest.raises(ValidationFailed) as caught:
        client.purchase(PurchaseRequest(Decimal("5"), "bad-template"))
    assert "Unbekannte Vorlage" in caught.value.message
    assert caught.value.status_code == 400 and caught.value.what_to_check


def test_a_reason_that_echoes_the_code_is_scrubbed(mocked, sensitive, client):
    with_session(mocked, sensitive, client)
    mocked.post(
        f"{BASE}/checkcode", status=400, json={"status": "error", "response": f"Code {CODE} gesperrt"}
    )
    with pytest.raises(ValidationFailed) as caught:
        client.check(CODE)
    assert CODE not in caught.value.message and "gesperrt" in caught.value.message


def test_refused_login_is_auth_failed_and_not_retried(mocked, client):
    mocked.post(f"{BASE}/ping", json={"status": "OK", "myip": PUBLIC_IP})
    mocked.post(f"{BASE}/login", status=400, json={"status": "error", "response": "Login fehlgeschlagen"})
    with pytest.raises(AuthFailed) as caught:
        client.check(CODE)
    assert any(PUBLIC_IP in item for item in caught.value.what_to_check)
    assert [c.request.url.rsplit("/", 1)[1] for c in mocked.calls] == ["ping", "login"]


@pytest.mark.parametrize("http_status", [200, 403])
@pytest.mark.parametrize("status_value", ["DENIED", "denied"])
def test_denied_is_rate_limited_and_cools_down_across_client_instances(
    mocked, sensitive, http_status, status_value
):
    first = LinaClient(lina_config())
    with_session(mocked, sensitive, first)
    mocked.post(f"{BASE}/checkcode", status=http_status, json={"status": status_value})
    with pytest.raises(RateLimited) as caught:
        first.check(CODE)
    assert caught.value.retry_at is not None and caught.value.retry_at.timestamp() > time.time() + 290
    # Another process (another instance sharing the cache) does not call LINA at all.
    second = LinaClient(lina_config())
    for call in (lambda: second.check(CODE), second.ping, lambda: second.redeem(CODE, Decimal("1"))):
        with pytest.raises(RateLimited):
            call()
    assert len(mocked.calls) == 1


def test_cool_down_length_is_the_setting_and_calls_resume_after_it(mocked, sensitive, settings, client):
    settings.LINA_DENIED_COOLDOWN_SECONDS = 42
    mocked.post(f"{BASE}/ping", json={"status": "DENIED"})
    with pytest.raises(RateLimited) as caught:
        client.ping()
    assert 40 < caught.value.retry_at.timestamp() - time.time() <= 42
    cache.set(
        cooldown_key(client.config.base_url, client.config.username), time.time() - 1
    )  # the cool-down has passed
    mocked.replace(responses.POST, f"{BASE}/ping", json={"status": "OK", "myip": PUBLIC_IP})
    assert client.ping().ip == PUBLIC_IP


@pytest.mark.parametrize("spelling", ["Maintenance", "Maintanance", "MAINTENANCE"])
@pytest.mark.parametrize("operation", ["ping", "login", "checkcode", "redeem"])
def test_maintenance_on_any_call_is_unavailable(mocked, sensitive, client, spelling, operation):
    sensitive.append(SESSION)
    answers = {
        "ping": {"status": "OK", "myip": PUBLIC_IP},
        "login": {"status": "OK", "hash": SESSION},
        "checkcode": {"status": "OK", "token": "Valid"},
        "redeem": {"status": "OK", "resp": "OK"},
        operation: {"status": spelling},
    }
    for name, answer in answers.items():
        mocked.post(f"{BASE}/{name}", json=answer)
    with pytest.raises(ProviderUnavailable) as caught:
        if operation == "redeem":
            client.redeem(CODE, Decimal("1"))
        else:
            client.check(CODE)
    assert "maintenance" in caught.value.message


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error"),
    [
        (500, "Internal Server Error", "text/plain", ProviderUnavailable),
        (502, "<html>Bad Gateway</html>", "text/html", ProviderUnavailable),
        (503, '{"status": "error"}', "application/json", ProviderUnavailable),
        (404, "<html>Not Found</html>", "text/html", ProviderUnavailable),
        (200, "<html>proxy login</html>", "text/html", UnexpectedAnswer),
        (200, "", "application/json", UnexpectedAnswer),
        (200, '["status", "OK"]', "application/json", UnexpectedAnswer),
        (200, '{"status": "Weird"}', "application/json", UnexpectedAnswer),
        (200, '{"status": "OK", "token": "Perhaps"}', "application/json", UnexpectedAnswer),
        (200, '{"status": "OK", "token": "Valid", "restwert": "viel"}', "application/json", UnexpectedAnswer),
        (403, '{"status": "error"}', "application/json", AuthFailed),
    ],
)
def test_broken_checkcode_answers_end_as_documented_errors(
    mocked, sensitive, client, status, body, content_type, error
):
    with_session(mocked, sensitive, client)
    mocked.post(f"{BASE}/checkcode", status=status, body=body, content_type=content_type)
    with pytest.raises(error):
        client.check(CODE)


MONEY_CALLS = {
    "redeem": lambda client: client.redeem(CODE, Decimal("10")),
    "purchase": lambda client: client.purchase(PurchaseRequest(Decimal("5"), "tmpl")),
}


@pytest.mark.parametrize("operation", MONEY_CALLS)
@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (500, "Internal Server Error", "text/plain"),
        (500, '{"status": "error", "response": "Datenbankfehler"}', "application/json"),
        (502, "<html>Bad Gateway</html>", "text/html"),
        (503, '{"status": "OK", "resp": "OK"}', "application/json"),
        (504, "", "text/html"),
        (200, "<html>proxy login</html>", "text/html"),
        (200, '{"status": "OK", "resp": "O', "application/json"),
        (200, "", "application/json"),
        (200, '["status", "OK"]', "application/json"),
        (200, '{"status": "Weird"}', "application/json"),
        (201, '{"status": "OK"}', "application/json"),
        (302, "", "text/html"),
        (404, "<html>Not Found</html>", "text/html"),
    ],
)
def test_an_unusable_answer_to_a_money_call_is_outcome_unknown_and_never_resent(
    mocked, sensitive, client, operation, status, body, content_type
):
    """A 5xx, an HTML page or an unreadable body may come after LINA acted: reconcile, never resend."""
    with_session(mocked, sensitive, client)
    mocked.post(f"{BASE}/{operation}", status=status, body=body, content_type=content_type)
    with pytest.raises(OutcomeUnknown) as caught:
        MONEY_CALLS[operation](client)
    assert "not known whether" in caught.value.message and "<" not in caught.value.message
    assert caught.value.status_code == status
    assert len(mocked.calls) == 1


@pytest.mark.parametrize("operation", MONEY_CALLS)
@pytest.mark.parametrize(
    ("status", "answer", "error"),
    [
        (200, {"status": "Maintenance"}, ProviderUnavailable),
        (200, {"status": "DENIED"}, RateLimited),
        (403, {"status": "DENIED"}, RateLimited),
        (403, {"status": "error"}, AuthFailed),
        (400, {"status": "error", "response": "Parameter fehlt"}, ValidationFailed),
        (404, {"status": "error", "response": "Unbekannte Funktion"}, ProviderUnavailable),
    ],
)
def test_a_readable_no_to_a_money_call_stays_definite(
    mocked, sensitive, client, operation, status, answer, error
):
    with_session(mocked, sensitive, client)
    mocked.post(f"{BASE}/{operation}", status=status, json=answer)
    with pytest.raises(error) as caught:
        MONEY_CALLS[operation](client)
    assert not isinstance(caught.value, OutcomeUnknown)
    assert len(mocked.calls) == 1


def test_missing_credentials_are_misconfigured_without_a_call(mocked):
    client = LinaClient(lina_config(shared_key=""))
    with pytest.raises(Misconfigured):
        client.check(CODE)
    assert len(mocked.calls) == 0


# --- The shared session ---------------------------------------------------------------------------


# The session tests run against the sandbox's LINA over real HTTP: it issues session hashes,
# rejects expired ones and counts the requests per operation, as LINA does.
SANDBOX_ACCOUNT = ("demo-shop", "demo-lina-password", "demo-lina-shared-key")  # sandbox/seed.py


@pytest.fixture
def shop(sandbox, sensitive):
    """``shop(**overrides)`` → a config of the sandbox's demo LINA account, with token CODE of 50.00.
    Every session hash the client cached is added to the log guard's list."""
    sensitive.extend(SANDBOX_ACCOUNT[1:])
    sandbox.add_token(CODE, "50.00")
    sandbox.clear_requests()

    def config(**overrides):
        username, password, shared_key = SANDBOX_ACCOUNT
        base = {
            "base_url": sandbox.lina_url,
            "username": username,
            "password": password,
            "shared_key": shared_key,
        }
        return lina_config(**{**base, **overrides})

    yield config
    _guard_cached_session(sensitive)


def _guard_cached_session(sensitive) -> None:
    cached = cache.get(session_key(7))
    if isinstance(cached, dict) and cached.get("hash"):
        sensitive.append(cached["hash"])


def _expire_sessions(sandbox, sensitive) -> None:
    _guard_cached_session(sensitive)  # the hash about to be rejected may still be logged later
    sandbox.expire_sessions()


def test_one_login_serves_100_consecutive_checks(sandbox, shop):
    client = LinaClient(shop())
    for _ in range(100):
        assert client.check(CODE).valid
    assert sandbox.request_count("lina", "login") == 1
    assert sandbox.request_count("lina", "ping") == 1
    assert sandbox.request_count("lina", "checkcode") == 100


def test_a_rejected_hash_costs_exactly_one_new_login_and_one_repeat(sandbox, shop, sensitive):
    client = LinaClient(shop())
    client.check(CODE)
    _expire_sessions(sandbox, sensitive)
    for _ in range(10):
        client.check(CODE)
    assert sandbox.request_count("lina", "login") == 2
    assert sandbox.request_count("lina", "checkcode") == 12  # 11 checks + the one rejected attempt


def test_redeem_after_a_rejected_hash_is_repeated_once_and_applied_once(sandbox, shop, sensitive):
    client = LinaClient(shop())
    client.check(CODE)
    _expire_sessions(sandbox, sensitive)
    result = client.redeem(CODE, Decimal("10"))
    assert result.balance_after == Decimal("40.00")
    assert Decimal(sandbox.token(CODE)["remaining"]) == Decimal("40.00")
    assert sandbox.request_count("lina", "redeem") == 2


def test_a_hash_rejected_again_after_the_new_login_is_auth_failed(mocked, sensitive, client):
    mocked.post(f"{BASE}/ping", json={"status": "OK", "myip": PUBLIC_IP})
    mocked.post(f"{BASE}/login", json={"status": "OK", "hash": SESSION})
    sensitive.append(SESSION)
    mocked.post(f"{BASE}/checkcode", status=401, json={"status": "error", "response": "Hash ungültig"})
    with pytest.raises(AuthFailed):
        client.check(CODE)
    operations = [c.request.url.rsplit("/", 1)[1] for c in mocked.calls]
    assert operations == ["ping", "login", "checkcode", "ping", "login", "checkcode"]
    assert cache.get(session_key(7)) is None


def test_the_session_is_shared_by_client_instances(sandbox, shop):
    LinaClient(shop()).check(CODE)
    LinaClient(shop()).check(CODE)
    assert sandbox.request_count("lina", "login") == 1


def test_changed_credentials_log_in_anew(sandbox, shop):
    LinaClient(shop()).check(CODE)
    LinaClient(shop(connect_timeout=1.0)).check(CODE)  # not part of the login: same session
    assert sandbox.request_count("lina", "login") == 1
    with pytest.raises(AuthFailed):
        LinaClient(shop(password="rotated-password")).check(CODE)
    assert sandbox.request_count("lina", "login") == 2


def test_a_changed_public_ip_drops_the_cached_session(sandbox, shop, sensitive):
    client = LinaClient(shop())
    client.check(CODE)
    _guard_cached_session(sensitive)
    sandbox.set_client_ip("198.51.100.77")  # LINA binds hashes to the IP: the old one is refused now
    assert client.ping().ip == "198.51.100.77"
    assert cache.get(session_key(7)) is None
    client.check(CODE)
    assert cache.get(session_key(7))["ip"] == "198.51.100.77"
    assert sandbox.request_count("lina", "login") == 2
    assert sandbox.request_count("lina", "checkcode") == 2  # no rejected attempt: the ping caught it


def test_login_retries_transport_errors_but_logins_are_counted(sandbox, shop):
    sandbox.set_fault("lina", "login", "http_500", count=1)
    client = LinaClient(shop())
    client.check(CODE)
    assert sandbox.request_count("lina", "login") == 2
    assert client.logins == 1
