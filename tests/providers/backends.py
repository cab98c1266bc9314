"""Backends for the provider contract suite (test_contract.py).

A backend is whatever answers the clients' HTTP: today the in-process simulator behind
``responses``; later the sandbox over real HTTP. The contract tests talk only to this interface,
never to ``responses`` or the simulator directly, so a ``SandboxBackend`` implementing the same
methods (arranging state and faults through the sandbox's control endpoints) can be added to
the ``backend`` fixture's params without touching a test.
"""

from __future__ import annotations

import socket
from decimal import Decimal
from typing import Protocol

from vouchers.providers.base import ProviderConfig

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
        """``fault``: server_error (502 HTML), html (200 HTML), drop_after_send (applied, answer
        lost), denied, maintenance. ``operation`` is the wire name (checkcode, allocate, ...)."""

    def request_count(self, provider: str, operation: str) -> int: ...


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
