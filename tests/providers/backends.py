"""Backends for the provider contract suite (test_contract.py).

A backend is whatever answers the clients' HTTP: the in-process simulator behind ``responses``
(:class:`ResponsesBackend`), or the sandbox (sandbox/) over real HTTP on a local port
(:class:`SandboxBackend`, arranging state and faults through the sandbox's ``/_sandbox/`` control
API). The contract tests talk only to this interface, never to ``responses``, the simulator or
the sandbox directly. Where the two disagree, the sandbox (and WIRE.md/providers.md) is the
reference.
"""

from __future__ import annotations

import socket
from decimal import Decimal
from typing import Protocol

from django.core.cache import cache

from vouchers.providers.base import ProviderConfig
from vouchers.providers.lina import session_key
from vouchers.values.codes import format_code, normalize_code

from . import simulator as sim
from .conftest import allsafe_config, lina_config


class ProviderBackend(Protocol):
    name: str

    def config(self, provider: str, **overrides) -> ProviderConfig:
        """A working client configuration for ``provider`` ("lina" or "allsafe")."""

    def wrong_credentials_config(self, provider: str) -> ProviderConfig: ...

    def unreachable_config(self, provider: str) -> ProviderConfig:
        """A configuration whose base URL refuses connections (nothing can be sent)."""

    def add_lina_token(self, code: str, value: Decimal) -> None: ...

    def lina_balance(self, code: str) -> Decimal: ...

    def set_allsafe_stock(self, vendor: str, value: Decimal, count: int) -> None: ...

    def allsafe_stock(self, vendor: str, value: Decimal) -> int: ...

    def fault_next(self, provider: str, operation: str, fault: str) -> None:
        """``fault``: server_error (a 5xx, not applied), html (a 200 HTML page from a proxy),
        drop_after_send (applied, answer lost), denied, maintenance. ``operation`` is the wire
        name (checkcode, allocate, ...). Calls queue: each fault hits one later request, in order.
        maintenance is LINA's switch, not a queued fault: from then on every LINA call answers
        Maintenance (WIRE.md: on any call), as the sandbox's switch does."""

    def request_count(self, provider: str, operation: str) -> int:
        """Requests of ``operation`` that reached the provider, faulted ones included."""


def closed_local_url() -> str:
    """http://127.0.0.1:<port> where nothing listens (the port was just released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class ResponsesBackend:
    """The in-process simulator behind ``responses`` (no sockets)."""

    name = "responses"

    def __init__(self, simulator: sim.Simulator, mocked):
        self.sim = simulator
        self.mocked = mocked

    def config(self, provider: str, **overrides) -> ProviderConfig:
        return lina_config(**overrides) if provider == "lina" else allsafe_config(**overrides)

    def wrong_credentials_config(self, provider: str) -> ProviderConfig:
        return self.config(provider, password="not-the-password")

    def unreachable_config(self, provider: str) -> ProviderConfig:
        url = closed_local_url()
        self.mocked.add_passthru(url)  # a real refused connection, not a responses stand-in
        return self.config(provider, base_url=url + ("/lina" if provider == "lina" else ""))

    def add_lina_token(self, code: str, value: Decimal) -> None:
        self.sim.add_token(code, value)

    def lina_balance(self, code: str) -> Decimal:
        return self.sim.tokens[code].remaining

    def set_allsafe_stock(self, vendor: str, value: Decimal, count: int) -> None:
        self.sim.set_stock(vendor, value, count)

    def allsafe_stock(self, vendor: str, value: Decimal) -> int:
        return self.sim.stock[(vendor, Decimal(value))]

    def fault_next(self, provider: str, operation: str, fault: str) -> None:
        self.sim.fault(provider, operation, fault)

    def request_count(self, provider: str, operation: str) -> int:
        return self.sim.requests[(provider, operation)]


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
        return self.config(provider, base_url=closed_local_url() + ("/lina" if provider == "lina" else ""))

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
