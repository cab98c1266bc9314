"""One contract, both providers: what every provider client promises its callers.

Each test runs for LINA and for Allsafe (the ``driver`` fixture) against the sandbox providers
over real HTTP (the ``backend`` fixture: state and faults arranged through the sandbox's
``/_sandbox/`` control API). Tests speak only through the backend and the drivers below.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.cache import cache

from portal.processes import closed_port_url
from vouchers.providers.base import AllocateRequest, Availability, ProviderConfig, TokenInfo
from vouchers.providers.clients import build_client
from vouchers.providers.errors import (
    AuthFailed,
    OutcomeUnknown,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Rejected,
)
from vouchers.providers.lina import session_key
from vouchers.values.codes import format_code, normalize_code

from .conftest import allsafe_config, lina_config

CODE = "CTRC7H2K9M4PQ8XZ"


class SandboxBackend:
    """The sandbox providers over real HTTP (fixture ``sandbox``, reset to the demo data).

    LINA is the sandbox's demo account; Allsafe gets a campaign of its own with one empty vault,
    so the stock the contract arranges is all there is (the demo campaign's vaults are seeded).
    """

    name = "sandbox"
    LINA_ACCOUNT = ("demo-shop", "demo-lina-password", "demo-lina-shared-key")  # sandbox/seed.py
    ALLSAFE_CAMPAIGN = ("contract-allsafe", "contract-allsafe-password")
    ALLSAFE_VAULT = "Contract vault"
    #: The contract's fault names, as sandbox fault kinds (sandbox/state.py FAULT_KINDS).
    FAULT_KINDS = {
        "server_error": {"kind": "http_500"},
        "html": {"kind": "html_error", "status": 200},  # a proxy's page with status 200
        "drop_after_send": {"kind": "lost_answer"},
        "denied": {"kind": "denied"},
    }

    def __init__(self, sandbox, sensitive: list[str]):
        self.sandbox = sandbox
        self.sensitive = sensitive
        self.sensitive.extend([*self.LINA_ACCOUNT[1:], self.ALLSAFE_CAMPAIGN[1]])
        sandbox.set_allsafe_campaign(
            self.ALLSAFE_CAMPAIGN[0], password=self.ALLSAFE_CAMPAIGN[1], vaults=[self.ALLSAFE_VAULT]
        )

    def config(self, provider: str, **overrides) -> ProviderConfig:
        if provider == "lina":
            username, password, shared_key = self.LINA_ACCOUNT
            base = {
                "base_url": self.sandbox.lina_url,
                "username": username,
                "password": password,
                "shared_key": shared_key,
            }
            return lina_config(**{**base, **overrides})
        username, password = self.ALLSAFE_CAMPAIGN
        base = {"base_url": self.sandbox.allsafe_url, "username": username, "password": password}
        return allsafe_config(**{**base, **overrides})

    def wrong_credentials_config(self, provider: str) -> ProviderConfig:
        return self.config(provider, password="not-the-password")

    def unreachable_config(self, provider: str) -> ProviderConfig:
        return self.config(provider, base_url=closed_port_url() + ("/lina" if provider == "lina" else ""))

    def add_lina_token(self, code: str, value: Decimal) -> None:
        self.sensitive.extend([normalize_code(code), format_code(code)])
        self.sandbox.add_token(code, str(value), account=self.LINA_ACCOUNT[0])

    def lina_balance(self, code: str) -> Decimal:
        return Decimal(self.sandbox.token(normalize_code(code))["remaining"])

    def set_allsafe_stock(self, vendor: str, value: Decimal, count: int) -> None:
        self.sandbox.set_stock(
            vendor, str(value), count, campaign=self.ALLSAFE_CAMPAIGN[0], vault=self.ALLSAFE_VAULT
        )

    def allsafe_stock(self, vendor: str, value: Decimal) -> int:
        return sum(
            row["count"]
            for row in self.sandbox.stock(self.ALLSAFE_CAMPAIGN[0])
            if row["vendor"] == vendor and Decimal(str(row["value"])) == Decimal(value)
        )

    def fault_next(self, provider: str, operation: str, fault: str) -> None:
        """``fault``: server_error (a 5xx, not applied), html (a 200 HTML page from a proxy),
        drop_after_send (applied, answer lost), denied, maintenance. ``operation`` is the wire
        name (checkcode, allocate, ...). Calls queue: each fault hits one later request, in order.
        maintenance is LINA's switch, not a queued fault: from then on every LINA call answers
        Maintenance (WIRE.md: on any call)."""
        if fault == "maintenance":
            assert provider == "lina", "maintenance is a LINA state"
            self.sandbox.set_maintenance(True)
            return
        self.sandbox.set_fault(provider, operation, **self.FAULT_KINDS[fault], count=1)

    def request_count(self, provider: str, operation: str) -> int:
        return self.sandbox.request_count(provider, operation)

    def guard_cached_session(self, campaign_id: int) -> None:
        """Add the session hash the client cached to the log guard's list (call at teardown)."""
        cached = cache.get(session_key(campaign_id))
        if isinstance(cached, dict) and cached.get("hash"):
            self.sensitive.append(cached["hash"])


@pytest.fixture
def backend(sandbox, sensitive):
    backend = SandboxBackend(sandbox, sensitive)
    yield backend
    for config in (backend.config("lina"), backend.config("allsafe")):
        backend.guard_cached_session(config.campaign_id)


class LinaDriver:
    provider = "lina"
    read_operation = "checkcode"
    money_operation = "redeem"

    def __init__(self, backend):
        self.backend = backend
        backend.add_lina_token(CODE, Decimal("50.00"))

    def read(self, client):
        result = client.check(CODE)
        assert isinstance(result, TokenInfo) and result.valid
        assert result.remaining_value == Decimal("50.00")
        return result

    def move_money(self, client):
        result = client.redeem(CODE, Decimal("10.00"))
        assert (result.balance_before, result.balance_after) == (Decimal("50.00"), Decimal("40.00"))
        return result

    def ask_for_a_definite_no(self, client):
        client.redeem(CODE, Decimal("999.00"))  # more than the balance

    def money_moved(self) -> bool:
        return self.backend.lina_balance(CODE) != Decimal("50.00")


class AllsafeDriver:
    provider = "allsafe"
    read_operation = "availability"
    money_operation = "allocate"

    def __init__(self, backend):
        self.backend = backend
        backend.set_allsafe_stock("Takealot", Decimal("100"), 3)
        backend.set_allsafe_stock("Takealot", Decimal("50"), 0)

    def read(self, client):
        result = client.availability()
        assert isinstance(result, Availability)
        assert {(i.vendor, i.value, i.remaining) for i in result.items} == {
            ("Takealot", Decimal("100"), 3),
            ("Takealot", Decimal("50"), 0),
        }
        return result

    def move_money(self, client):
        voucher = client.allocate(AllocateRequest("Takealot", Decimal("100"), "portal-op-1"))
        assert voucher.code and voucher.vendor == "Takealot" and voucher.value == Decimal("100")
        return voucher

    def ask_for_a_definite_no(self, client):
        client.allocate(AllocateRequest("Takealot", Decimal("50"), "portal-op-2"))  # none left

    def money_moved(self) -> bool:
        return self.backend.allsafe_stock("Takealot", Decimal("100")) != 3


@pytest.fixture(params=[LinaDriver, AllsafeDriver], ids=["lina", "allsafe"])
def driver(request, backend):
    return request.param(backend)


@pytest.fixture
def client(driver, backend):
    return build_client(backend.config(driver.provider))


def test_read_returns_a_typed_result_and_keeps_the_raw_answer(driver, client):
    result = driver.read(client)
    assert result.raw


def test_money_call_is_sent_once_and_returns_a_typed_result(driver, client, backend):
    result = driver.move_money(client)
    assert result.raw
    assert driver.money_moved()
    assert backend.request_count(driver.provider, driver.money_operation) == 1


def test_a_definite_no_is_rejected_with_a_staff_message_and_changes_nothing(driver, client):
    with pytest.raises(Rejected) as caught:
        driver.ask_for_a_definite_no(client)
    assert caught.value.message
    assert not driver.money_moved()


def test_wrong_credentials_are_auth_failed_with_what_to_check(driver, backend):
    client = build_client(backend.wrong_credentials_config(driver.provider))
    with pytest.raises(AuthFailed) as caught:
        driver.read(client)
    assert caught.value.what_to_check


def test_a_read_is_retried_after_a_server_error(driver, client, backend):
    backend.fault_next(driver.provider, driver.read_operation, "server_error")
    driver.read(client)
    assert backend.request_count(driver.provider, driver.read_operation) == 2


def test_a_read_gives_up_after_bounded_retries(driver, client, backend):
    for _ in range(5):
        backend.fault_next(driver.provider, driver.read_operation, "server_error")
    with pytest.raises(ProviderUnavailable):
        driver.read(client)
    assert backend.request_count(driver.provider, driver.read_operation) == 3  # 1 + PROVIDER_READ_RETRIES


@pytest.mark.parametrize("fault", ["server_error", "html"])
def test_a_money_call_answered_with_an_error_page_is_outcome_unknown_and_never_resent(
    driver, client, backend, fault
):
    """A 5xx or an HTML page may come after the provider acted: reconcile, never resend."""
    backend.fault_next(driver.provider, driver.money_operation, fault)
    with pytest.raises(OutcomeUnknown) as caught:
        driver.move_money(client)
    assert "<" not in caught.value.message
    assert backend.request_count(driver.provider, driver.money_operation) == 1


def test_an_answer_lost_after_sending_is_outcome_unknown_and_not_resent(driver, client, backend):
    backend.fault_next(driver.provider, driver.money_operation, "drop_after_send")
    with pytest.raises(OutcomeUnknown):
        driver.move_money(client)
    assert backend.request_count(driver.provider, driver.money_operation) == 1
    assert driver.money_moved(), "the provider acted: 'unknown' is the only honest answer"


def test_an_unreachable_provider_is_unavailable_and_nothing_was_sent(driver, backend):
    client = build_client(backend.unreachable_config(driver.provider))
    with pytest.raises(ProviderUnavailable) as caught:
        driver.move_money(client)
    assert not isinstance(caught.value, OutcomeUnknown)
    assert not driver.money_moved()


def test_an_html_page_is_unavailable_and_never_shown(driver, client, backend):
    for _ in range(3):
        backend.fault_next(driver.provider, driver.read_operation, "html")
    with pytest.raises(ProviderUnavailable) as caught:
        driver.read(client)
    assert "<" not in caught.value.message and "Proxy" not in caught.value.message


def test_every_error_is_a_documented_provider_error(driver, client, backend):
    """Whatever fault comes, the caller sees a ProviderError, never a transport exception."""
    for fault in ("server_error", "html", "drop_after_send"):
        backend.fault_next(driver.provider, driver.money_operation, fault)
        with pytest.raises(ProviderError):
            driver.move_money(client)


# --- LINA only: the states Allsafe does not have ----------------------------------------------------


@pytest.fixture
def lina(backend):
    return LinaDriver(backend), build_client(backend.config("lina"))


def test_lina_maintenance_is_unavailable_and_changes_nothing(lina, backend):
    driver, client = lina
    backend.fault_next("lina", "redeem", "maintenance")
    with pytest.raises(ProviderUnavailable) as caught:
        driver.move_money(client)
    assert not isinstance(caught.value, OutcomeUnknown) and "maintenance" in caught.value.message
    assert not driver.money_moved()


def test_lina_denied_is_rate_limited_and_no_call_is_made_during_the_cool_down(lina, backend):
    driver, client = lina
    backend.fault_next("lina", "checkcode", "denied")
    with pytest.raises(RateLimited) as caught:
        driver.read(client)
    assert caught.value.retry_at is not None
    sent = {op: backend.request_count("lina", op) for op in ("ping", "login", "checkcode", "redeem")}
    for call in (lambda: driver.read(client), lambda: driver.move_money(client), client.ping):
        with pytest.raises(RateLimited):
            call()
    assert {op: backend.request_count("lina", op) for op in sent} == sent
    assert not driver.money_moved()
