"""LINA as documented (issue 13): session rejections in every plausible form, maintenance, the
shared failed-call budget, and every kind of unusable answer classified in one place."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import pytest
import responses
from django.core.cache import cache

from vouchers.providers.errors import (
    CallBudgetSpent,
    OutcomeUnknown,
    ProviderMaintenance,
    RateLimited,
    SessionRejected,
    TokenInvalid,
    UnexpectedAnswer,
    ValidationFailed,
)
from vouchers.providers.lina import DEFAULT_SESSION_PHRASES, LinaClient, account_id, session_key

from .conftest import LINA_BASE, PUBLIC_IP, USERNAME, lina_config

CODE = "ABCD2345EFGH6789"
BASE = LINA_BASE
SESSION = "0f0e0d0c0b0a09080706050403020100"
FRESH = "1f1e1d1c1b1a19181716151413121110"


def operations(mocked) -> list[str]:
    return [c.request.url.rsplit("/", 1)[1] for c in mocked.calls]


@pytest.fixture
def lina(mocked, sensitive):
    """ping/login stubs; the first login hands out SESSION, the next FRESH."""
    sensitive.extend([SESSION, FRESH, CODE])
    mocked.post(f"{BASE}/ping", json={"status": "OK", "myip": PUBLIC_IP})
    mocked.post(f"{BASE}/login", json={"status": "OK", "hash": SESSION})
    mocked.post(f"{BASE}/login", json={"status": "OK", "hash": FRESH})
    return mocked


VALID = {
    "status": "OK",
    "response": "",
    "token": "Valid",
    "tokencode": "ABCD-2345-EFGH-6789",
    "startwert": "50,00",
    "restwert": "50,00",
    "tokengueltig": "31.12.2099",
    "tokencomplete": 0,
}

REJECTIONS = [
    pytest.param(400, {"status": "error", "response": "Hash ungültig"}, id="400-hash-de"),
    pytest.param(400, {"status": "error", "response": "Sitzung abgelaufen"}, id="400-sitzung"),
    pytest.param(400, {"status": "error", "response": "Bitte erneut anmelden"}, id="400-anmelden"),
    pytest.param(400, {"status": "error", "response": "Session expired"}, id="400-session-en"),
    pytest.param(200, {"status": "error", "response": "Not logged in"}, id="200-status-error"),
    pytest.param(401, {"status": "error", "response": "Hash ungültig"}, id="401-json"),
    pytest.param(401, None, id="401-empty"),
]


def _stub(mocked, operation: str, status: int, body) -> None:
    if body is None:
        mocked.post(f"{BASE}/{operation}", status=status, body=b"")
    else:
        mocked.post(f"{BASE}/{operation}", status=status, json=body)


@pytest.mark.parametrize(("status", "body"), REJECTIONS)
def test_a_session_rejection_in_any_form_costs_one_login_and_one_repeat(lina, status, body):
    _stub(lina, "checkcode", status, body)
    lina.post(f"{BASE}/checkcode", json=VALID)
    info = LinaClient(lina_config()).check(CODE)
    assert info.valid and info.remaining_value == Decimal("50.00")
    assert operations(lina) == ["ping", "login", "checkcode", "ping", "login", "checkcode"]
    assert cache.get(session_key(7))["hash"] == FRESH  # the dead hash is gone from the shared cache


@pytest.mark.parametrize(("status", "body"), REJECTIONS)
def test_a_redeem_whose_first_answer_is_a_session_rejection_is_sent_again_once(lina, status, body):
    _stub(lina, "redeem", status, body)
    lina.post(
        f"{BASE}/redeem",
        json={"status": "OK", "token": "Valid", "resp": "OK", "amount_old": "50,00", "amount_new": "40,00"},
    )
    result = LinaClient(lina_config()).redeem(CODE, Decimal("10"))
    assert result.balance_after == Decimal("40.00")
    assert operations(lina).count("redeem") == 2


def test_a_second_rejection_is_shown_plainly_and_logged_with_its_cause(lina, caplog):
    for _ in range(2):
        lina.post(f"{BASE}/checkcode", status=400, json={"status": "error", "response": "Hash ungültig"})
    with caplog.at_level(logging.INFO), pytest.raises(SessionRejected) as caught:
        LinaClient(lina_config()).check(CODE)
    error = caught.value
    assert "Hash ungültig" in error.message and "Nothing was changed" in error.message
    assert "session rejected twice" in error.detail and "Hash ungültig" in error.detail
    assert operations(lina) == ["ping", "login", "checkcode", "ping", "login", "checkcode"]
    logged = [r.getMessage() for r in caplog.records if r.name == "vouchers.providers.lina"]
    assert any("rejected again" in text and "'hash'" in text for text in logged)
    assert cache.get(session_key(7)) is None


def test_an_error_without_a_session_phrase_is_not_a_session_rejection(lina):
    lina.post(f"{BASE}/checkcode", status=400, json={"status": "error", "response": "Parameter code fehlt"})
    with pytest.raises(ValidationFailed) as caught:
        LinaClient(lina_config()).check(CODE)
    assert operations(lina) == ["ping", "login", "checkcode"]
    # The log line names the cause, not just "ValidationFailed ()".
    assert "Parameter code fehlt" in caught.value.detail and "HTTP 400" in caught.value.detail


def test_the_phrases_are_the_campaigns_setting(lina):
    lina.post(f"{BASE}/checkcode", status=400, json={"status": "error", "response": "Zugang verfallen"})
    lina.post(f"{BASE}/checkcode", json=VALID)
    config = lina_config(lina_session_phrases=("verfallen",))
    assert LinaClient(config).check(CODE).valid
    assert operations(lina).count("login") == 2
    assert "sitzung" in DEFAULT_SESSION_PHRASES and "session" in DEFAULT_SESSION_PHRASES


# --- Maintenance ------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["Maintenance", "Maintanance"])
@pytest.mark.parametrize("status", [200, 400])
def test_maintenance_on_a_hashed_call_is_named_and_not_repeated(lina, spelling, status):
    lina.post(f"{BASE}/redeem", status=status, json={"status": spelling})
    with pytest.raises(ProviderMaintenance) as caught:
        LinaClient(lina_config()).redeem(CODE, Decimal("5"))
    assert caught.value.message == "LINA is in maintenance. Nothing was changed; try again later."
    assert operations(lina).count("redeem") == 1


# --- Unusable answers: classified, never a crash ---------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "read_error", "money_error"),
    [
        ({"status": 200, "json": {"status": "WAIT"}}, UnexpectedAnswer, OutcomeUnknown),
        ({"status": 200, "json": {"status": 3}}, UnexpectedAnswer, OutcomeUnknown),
        ({"status": 400, "body": b""}, UnexpectedAnswer, OutcomeUnknown),
        (
            {
                "status": 400,
                "body": b"<html><h1>400 Bad Request</h1>nginx</html>",
                "content_type": "text/html",
            },
            UnexpectedAnswer,
            OutcomeUnknown,
        ),
        (
            {"status": 200, "body": b"<!doctype html><p>Proxy login</p>", "content_type": "text/html"},
            UnexpectedAnswer,
            OutcomeUnknown,
        ),
        ({"status": 200, "json": ["OK"]}, UnexpectedAnswer, OutcomeUnknown),
        ({"status": 204, "body": b""}, UnexpectedAnswer, OutcomeUnknown),
        ({"status": 400, "json": {"status": "error"}}, ValidationFailed, ValidationFailed),
    ],
    ids=["unknown-status", "number-status", "empty-400", "html-400", "html-200", "list", "204", "bare-error"],
)
def test_every_unusable_answer_is_one_provider_error(lina, settings, kwargs, read_error, money_error):
    settings.PROVIDER_READ_RETRIES = 0
    lina.post(f"{BASE}/checkcode", **kwargs)
    lina.post(f"{BASE}/redeem", **kwargs)
    client = LinaClient(lina_config())
    with pytest.raises(read_error) as read:
        client.check(CODE)
    with pytest.raises(money_error) as money:
        client.redeem(CODE, Decimal("5"))
    for error in (read.value, money.value):
        assert error.message and "<" not in error.message  # plain words, never the body
        assert error.detail


# --- The failed-call budget shared per LINA account -------------------------------------------


def invalid(mocked, n: int) -> None:
    for _ in range(n):
        mocked.post(
            f"{BASE}/checkcode", json={"status": "OK", "token": "Invalid", "response": "nicht gefunden"}
        )


def test_the_budget_is_shared_by_every_campaign_on_one_account_and_says_when(lina, settings):
    settings.LINA_FAILED_CALL_LIMIT = 4
    settings.LINA_FAILED_CALL_WINDOW_SECONDS = 60
    invalid(lina, 4)
    tills = [LinaClient(lina_config(campaign_id=n)) for n in (7, 8)]  # two campaigns, one account
    for n in range(4):
        assert not tills[n % 2].check(CODE).valid
    calls = len(lina.calls)
    with pytest.raises(CallBudgetSpent) as caught:
        tills[0].check(CODE)
    with pytest.raises(CallBudgetSpent):
        tills[1].redeem(CODE, Decimal("1"))
    assert len(lina.calls) == calls  # nothing more reached LINA
    assert isinstance(caught.value, RateLimited)
    assert 55 < caught.value.retry_at.timestamp() - time.time() <= 60
    assert "Try again after" in caught.value.message
    # Another account (or another LINA host) has its own budget.
    assert account_id(BASE, USERNAME) == account_id(BASE.upper().replace("HTTPS", "https"), USERNAME)
    assert account_id(BASE, USERNAME) != account_id(BASE, "someone-else")
    assert account_id(BASE, USERNAME) != account_id("https://login.amadeus360.de/extern/tokenapi", USERNAME)


def test_the_budget_frees_up_as_failures_leave_the_window(lina, settings):
    settings.LINA_FAILED_CALL_LIMIT = 2
    settings.LINA_FAILED_CALL_WINDOW_SECONDS = 1
    invalid(lina, 3)
    client = LinaClient(lina_config())
    client.check(CODE)
    client.check(CODE)
    with pytest.raises(CallBudgetSpent):
        client.check(CODE)
    time.sleep(1.1)
    assert not client.check(CODE).valid


def test_refused_logins_and_status_errors_count_session_rejections_do_not(lina, settings):
    settings.LINA_FAILED_CALL_LIMIT = 2
    lina.post(f"{BASE}/checkcode", status=400, json={"status": "error", "response": "Hash ungültig"})
    lina.post(f"{BASE}/checkcode", json=VALID)
    lina.post(f"{BASE}/redeem", json={"status": "OK", "token": "Invalid", "resp": "Err", "msg": "unbekannt"})
    client = LinaClient(lina_config())
    assert client.check(CODE).valid  # a rejection + repeat: nothing counted
    with pytest.raises(TokenInvalid):
        client.redeem(CODE, Decimal("1"))  # counted (1)
    lina.replace(
        responses.POST, f"{BASE}/checkcode", status=400, json={"status": "error", "response": "Fehler"}
    )
    with pytest.raises(ValidationFailed):
        client.check(CODE)  # counted (2)
    with pytest.raises(CallBudgetSpent):
        client.check(CODE)
