"""Fault classification of both real clients against the live sandbox, over real HTTP.

Every fault mode of the sandbox (sandbox/state.py FAULT_KINDS, plus LINA's maintenance switch)
is put in front of every operation of the LINA and Allsafe clients, and the test checks what
the caller gets AND what happened at the provider: the sandbox journal says whether a
money-moving call was applied, its request counter how often the client sent it.

The rule under test (vouchers/providers/base.py): a money-moving call (redeem, purchase,
allocate) that may have reached the provider without a readable answer is OutcomeUnknown and is
never resent; reads are retried a bounded number of times and end as ProviderUnavailable (or
OutcomeUnknown when the last attempt timed out: a read changes nothing either way).
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.core.cache import cache

from vouchers.providers.base import AllocateRequest, PurchaseRequest
from vouchers.providers.clients import build_client
from vouchers.providers.errors import (
    OutcomeUnknown,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnexpectedAnswer,
)
from vouchers.providers.lina import cooldown_key, session_key

from .conftest import allsafe_config, lina_config

LINA_ACCOUNT = ("demo-shop", "demo-lina-password", "demo-lina-shared-key")  # sandbox/seed.py
ALLSAFE_CAMPAIGN = ("demo-allsafe", "demo-allsafe-password")
CODE = "DEMOPARTIAL50EUR"  # 50.00, partial redemption allowed
TEMPLATE = "0d4e7a9c2f6b1835"  # demo-shop's "Allgemein", no layouts
RETRIES = 2  # PROVIDER_READ_RETRIES in this package (conftest._fast_retries)
HANG_READ_TIMEOUT = 0.3
HANG_SECONDS = 1.2


class Live:
    """Both clients pointed at the sandbox, and what the sandbox saw."""

    def __init__(self, sandbox, read_timeout: float):
        self.sandbox = sandbox
        self.lina = build_client(
            lina_config(
                base_url=sandbox.lina_url,
                username=LINA_ACCOUNT[0],
                password=LINA_ACCOUNT[1],
                shared_key=LINA_ACCOUNT[2],
                read_timeout=read_timeout,
            )
        )
        self.allsafe = build_client(
            allsafe_config(
                base_url=sandbox.allsafe_url,
                username=ALLSAFE_CAMPAIGN[0],
                password=ALLSAFE_CAMPAIGN[1],
                read_timeout=read_timeout,
            )
        )
        self.references = 0

    # Each operation of both providers, as the test wants to call it.
    def call(self, operation: str):
        if operation == "checkcode":
            return self.lina.check(CODE)
        if operation == "redeem":
            return self.lina.redeem(CODE, Decimal("10.00"))
        if operation == "purchase":
            return self.lina.purchase(PurchaseRequest(Decimal("15.00"), TEMPLATE))
        if operation == "availability":
            return self.allsafe.availability()
        self.references += 1
        return self.allsafe.allocate(AllocateRequest("Takealot", Decimal("100"), f"fault-{self.references}"))

    def sent(self, operation: str) -> int:
        return self.sandbox.request_count(PROVIDER[operation], operation)

    def applied(self, operation: str) -> list[dict]:
        return self.sandbox.journal(PROVIDER[operation], operation, applied=True)

    def warm_up(self, operation: str) -> None:
        """Log in before the fault is set, so only the operation itself meets it."""
        if PROVIDER[operation] == "lina":
            self.lina.ping()
            self.lina.login()


PROVIDER = {
    "checkcode": "lina",
    "redeem": "lina",
    "purchase": "lina",
    "availability": "allsafe",
    "allocate": "allsafe",
}
READS = ["checkcode", "availability"]
MONEY = ["redeem", "purchase", "allocate"]


@pytest.fixture
def live_factory(sandbox, sensitive):
    sensitive.extend([*LINA_ACCOUNT[1:], ALLSAFE_CAMPAIGN[1], CODE])
    made: list[Live] = []

    def make(read_timeout: float = 2.0) -> Live:
        made.append(Live(sandbox, read_timeout))
        return made[-1]

    yield make
    # The log guard runs after this: the session hash the client cached must not be in a log.
    cached = cache.get(session_key(lina_config().campaign_id))
    if isinstance(cached, dict):
        sensitive.append(cached["hash"])


@pytest.fixture
def live(live_factory) -> Live:
    return live_factory()


def _guard_code(sensitive, result) -> None:
    """A purchased token or allocated PIN must not reach a log either."""
    if getattr(result, "code", ""):
        sensitive.append(result.code)


# --- Latency below the timeout ----------------------------------------------------------------------


@pytest.mark.parametrize("operation", READS + MONEY)
def test_latency_below_the_timeout_is_a_success(live_factory, operation, sensitive):
    live = live_factory(read_timeout=2.0)
    live.warm_up(operation)
    live.sandbox.set_fault(PROVIDER[operation], operation, "latency", ms=300)
    started = time.monotonic()
    _guard_code(sensitive, live.call(operation))
    assert time.monotonic() - started >= 0.3  # the latency was there, and below the timeout
    assert live.sent(operation) == 1
    if operation in MONEY:
        assert len(live.applied(operation)) == 1


# --- Hang past the read timeout -----------------------------------------------------------------------


@pytest.mark.parametrize("operation", MONEY)
def test_a_money_call_hanging_past_the_read_timeout_is_outcome_unknown_and_not_resent(
    live_factory, operation
):
    live = live_factory(read_timeout=HANG_READ_TIMEOUT)
    live.warm_up(operation)
    live.sandbox.set_fault(PROVIDER[operation], operation, "hang", seconds=HANG_SECONDS)
    with pytest.raises(OutcomeUnknown):
        live.call(operation)
    assert live.sent(operation) == 1
    [entry] = live.applied(operation)  # the provider acted: "unknown" is the honest answer
    assert entry["fault"] == "hang"


@pytest.mark.parametrize("operation", READS)
def test_a_read_hanging_once_is_retried_and_succeeds(live_factory, operation):
    live = live_factory(read_timeout=HANG_READ_TIMEOUT)
    live.warm_up(operation)
    live.sandbox.set_fault(PROVIDER[operation], operation, "hang", seconds=HANG_SECONDS)
    live.call(operation)
    assert live.sent(operation) == 2


@pytest.mark.parametrize("operation", READS)
def test_a_read_that_keeps_hanging_gives_up_after_bounded_retries(live_factory, operation):
    live = live_factory(read_timeout=HANG_READ_TIMEOUT)
    live.warm_up(operation)
    live.sandbox.set_fault(PROVIDER[operation], operation, "hang", seconds=HANG_SECONDS, count=None)
    with pytest.raises((ProviderUnavailable, OutcomeUnknown)) as caught:
        live.call(operation)
    # As designed, the last attempt's classification is raised: it timed out, so OutcomeUnknown.
    assert type(caught.value) is OutcomeUnknown
    assert live.sent(operation) == 1 + RETRIES


# --- Lost answer ------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", MONEY)
def test_a_lost_answer_is_outcome_unknown_applied_exactly_once(live, operation):
    live.warm_up(operation)
    live.sandbox.set_fault(PROVIDER[operation], operation, "lost_answer")
    with pytest.raises(OutcomeUnknown):
        live.call(operation)
    assert live.sent(operation) == 1  # no resend
    [entry] = live.applied(operation)
    assert entry["fault"] == "lost_answer"
    if operation == "redeem":
        assert live.sandbox.token(CODE)["remaining"] == "40.00"
    # The connection the answer was lost on is not reused: the next call gets through.
    live.call("checkcode" if PROVIDER[operation] == "lina" else "availability")


@pytest.mark.parametrize("operation", READS)
def test_a_read_with_a_lost_answer_is_retried_and_succeeds(live, operation):
    live.warm_up(operation)
    live.sandbox.set_fault(PROVIDER[operation], operation, "lost_answer")
    live.call(operation)
    assert live.sent(operation) == 2


# --- HTTP 500, an HTML page, malformed JSON -----------------------------------------------------------

ERROR_ANSWERS = [
    pytest.param({"kind": "http_500"}, id="http_500"),
    pytest.param({"kind": "html_error"}, id="html_502"),
    pytest.param({"kind": "html_error", "status": 504}, id="html_504"),
    pytest.param({"kind": "html_error", "status": 200}, id="html_200"),
    pytest.param({"kind": "malformed_json"}, id="malformed_json"),
]


@pytest.mark.parametrize("applied", [False, True], ids=["not-applied", "applied"])
@pytest.mark.parametrize("fault", ERROR_ANSWERS)
@pytest.mark.parametrize("operation", MONEY)
def test_an_error_answer_to_a_money_call_is_outcome_unknown_and_not_resent(live, operation, fault, applied):
    """Whether the provider acted before the error page (``apply``) cannot be told from the
    answer — which is exactly why both cases must be OutcomeUnknown."""
    live.warm_up(operation)
    live.sandbox.set_fault(PROVIDER[operation], operation, **fault, apply=applied)
    with pytest.raises(OutcomeUnknown) as caught:
        live.call(operation)
    assert "<" not in caught.value.message and "Bad Gateway" not in caught.value.message
    assert live.sent(operation) == 1
    assert len(live.applied(operation)) == (1 if applied else 0)


@pytest.mark.parametrize("fault", ERROR_ANSWERS)
@pytest.mark.parametrize("operation", READS)
def test_an_error_answer_to_a_read_is_unavailable_after_bounded_retries(live, operation, fault):
    live.warm_up(operation)
    live.sandbox.set_fault(PROVIDER[operation], operation, **fault, count=None)
    with pytest.raises(ProviderUnavailable) as caught:
        live.call(operation)
    assert not isinstance(caught.value, OutcomeUnknown)
    assert "<" not in caught.value.message
    server_error = fault.get("status", 500 if fault["kind"] == "http_500" else 502) >= 500
    if fault["kind"] == "malformed_json" or not server_error:
        assert isinstance(caught.value, UnexpectedAnswer)  # a 200 that cannot be read: no retry
        assert live.sent(operation) == 1
    else:
        assert live.sent(operation) == 1 + RETRIES


@pytest.mark.parametrize("operation", READS)
def test_a_read_is_retried_past_one_server_error(live, operation):
    live.warm_up(operation)
    live.sandbox.set_fault(PROVIDER[operation], operation, "http_500", status=503)
    live.call(operation)
    assert live.sent(operation) == 2


# --- LINA: DENIED and Maintenance -------------------------------------------------------------------


def lina_sent(sandbox) -> int:
    return sum(row["count"] for row in sandbox.control("GET", "requests", provider="lina"))


@pytest.mark.parametrize("status", [200, 403])
@pytest.mark.parametrize("operation", ["checkcode", "redeem", "purchase"])
def test_denied_is_rate_limited_with_a_cool_down_without_any_call(live, operation, status, settings):
    settings.LINA_DENIED_COOLDOWN_SECONDS = 120
    live.warm_up(operation)
    live.sandbox.set_fault("lina", operation, "denied", status=status)
    with pytest.raises(RateLimited) as caught:
        live.call(operation)
    assert caught.value.retry_at is not None
    sent = lina_sent(live.sandbox)
    # Another client instance (another process sharing the cache) does not call either.
    other = build_client(live.lina.config)
    for call in (lambda: live.call("checkcode"), lambda: live.call("redeem"), other.ping, other.login):
        with pytest.raises(RateLimited):
            call()
    assert lina_sent(live.sandbox) == sent
    assert live.applied("redeem") == [] and live.applied("purchase") == []


def test_denied_after_too_many_failed_calls_cools_the_client_down(live, sandbox):
    """The sandbox's own lock-out (failed calls per account), not an injected fault."""
    sandbox.set_lina_account(LINA_ACCOUNT[0], fail_threshold=3)
    live.warm_up("checkcode")
    for n in range(3):  # unknown codes count as failed calls (code guessing)
        assert not live.lina.check(f"NOSUCHCODE00000{n}").valid
    with pytest.raises(RateLimited):
        live.call("checkcode")
    sent = lina_sent(sandbox)
    with pytest.raises(RateLimited):
        live.call("redeem")
    assert lina_sent(sandbox) == sent
    assert sandbox.token(CODE)["remaining"] == "50.00"


@pytest.mark.parametrize("spelling", ["Maintenance", "Maintanance"])
@pytest.mark.parametrize("operation", ["checkcode", "redeem", "purchase"])
def test_maintenance_is_unavailable_and_changes_nothing(live, sandbox, operation, spelling):
    live.warm_up(operation)  # maintenance starts while the client holds a session
    sandbox.set_maintenance(True, spelling)
    with pytest.raises(ProviderUnavailable) as caught:
        live.call(operation)
    assert not isinstance(caught.value, OutcomeUnknown) and "maintenance" in caught.value.message
    assert sandbox.journal("lina") == []
    sandbox.set_maintenance(False)
    live.call("checkcode")  # and the same session works again afterwards


def test_maintenance_before_the_first_login_is_unavailable(live, sandbox):
    sandbox.set_maintenance(True)
    with pytest.raises(ProviderUnavailable):
        live.call("checkcode")
    assert sandbox.request_count("lina", "login") == 0  # the ping already said so


# --- Every fault ends as a documented error -----------------------------------------------------------


@pytest.mark.parametrize("operation", READS + MONEY)
def test_every_fault_ends_as_a_provider_error(live_factory, operation):
    live = live_factory(read_timeout=HANG_READ_TIMEOUT)
    live.warm_up(operation)
    kinds = ["http_500", "html_error", "malformed_json", "lost_answer", "hang"]
    if PROVIDER[operation] == "lina":
        kinds.append("denied")
    for kind in kinds:
        cache.delete(
            cooldown_key(live.lina.config.base_url, live.lina.config.username)
        )  # each kind meets the sandbox
        live.sandbox.set_fault(PROVIDER[operation], operation, kind, count=None, seconds=HANG_SECONDS)
        with pytest.raises(ProviderError):
            live.call(operation)
        live.sandbox.clear_faults()
