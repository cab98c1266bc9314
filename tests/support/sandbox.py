"""Fixture ``sandbox``: the provider simulators running in this test process, over real HTTP.

One server per test session (started on first use in a daemon thread on a free port), reset to
the demo data before every test that asks for it. Tests of other areas point a campaign's
``base_url`` at ``sandbox.lina_url`` or ``sandbox.allsafe_url`` and steer the providers with the
helpers below, which go through the sandbox's JSON control API (``/_sandbox/``).
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.server import SandboxServer, start_in_thread, stop

_server: SandboxServer | None = None
_start_lock = threading.Lock()


def _running_server() -> SandboxServer:
    global _server
    with _start_lock:
        if _server is None:
            _server, _thread = start_in_thread("127.0.0.1", 0, quiet=True)
            atexit.register(stop, _server)
        return _server


class SandboxError(AssertionError):
    """A control call was refused: the test set something up wrongly."""


class Sandbox:
    """Handle on the running sandbox: URLs and control helpers."""

    def __init__(self, server: SandboxServer):
        self.server = server
        self.url = server.base_url
        self.lina_url = f"{self.url}/lina/extern/tokenapi"
        self.allsafe_url = f"{self.url}/allsafe"
        self.http = requests.Session()

    def control(self, method: str, endpoint: str, payload: dict | None = None, **params: Any) -> Any:
        response = self.http.request(
            method, f"{self.url}/_sandbox/{endpoint}", json=payload, params=params or None, timeout=10
        )
        if response.status_code >= 400:
            raise SandboxError(f"{method} /_sandbox/{endpoint}: {response.status_code} {response.text}")
        return response.json()

    # --- whole state ---------------------------------------------------------------------------
    def reset(self, *, seed: bool = True) -> None:
        """Forget everything; re-seed the demo data unless ``seed`` is false."""
        self.control("POST", "reset", {"seed": seed})

    def state(self) -> dict:
        return self.control("GET", "state")

    # --- faults --------------------------------------------------------------------------------
    def set_fault(self, provider: str, operation: str, kind: str, *, count: int | None = 1, **params) -> dict:
        """Inject a fault for ``provider`` ("lina"/"allsafe") and ``operation`` (or "*").

        kind: latency (ms=), hang (seconds=), lost_answer, http_500 (status=), html_error (status=,
        default 502), malformed_json, denied (LINA only). ``count`` next calls, None = permanent;
        ``apply=True`` makes http_500/html_error/malformed_json answer after the call was applied.
        """
        spec = {"provider": provider, "operation": operation, "kind": kind, **params}
        spec.update({"permanent": True} if count is None else {"count": count})
        return self.control("POST", "faults", spec)

    def clear_faults(self, provider: str | None = None, operation: str | None = None) -> None:
        params = {k: v for k, v in (("provider", provider), ("operation", operation)) if v}
        self.control("DELETE", "faults", **params)

    def faults(self) -> list[dict]:
        return self.control("GET", "faults")

    def set_latency(self, ms: int) -> None:
        """Default latency added to every provider call."""
        self.control("POST", "latency", {"ms": ms})

    def set_maintenance(self, enabled: bool = True, spelling: str = "Maintenance") -> None:
        self.control("POST", "maintenance", {"enabled": enabled, "spelling": spelling})

    # --- journal -------------------------------------------------------------------------------
    def journal(
        self, provider: str | None = None, operation: str | None = None, *, applied=None
    ) -> list[dict]:
        """Money-moving calls the sandbox handled (redeem, purchase, allocate), oldest first."""
        params = {k: v for k, v in (("provider", provider), ("operation", operation)) if v}
        if applied is not None:
            params["applied"] = "1" if applied else "0"
        return self.control("GET", "journal", **params)

    def request_count(self, provider: str, operation: str) -> int:
        """How many ``provider``/``operation`` calls reached the sandbox (faulted ones included)."""
        rows = self.control("GET", "requests", provider=provider, operation=operation)
        return sum(row["count"] for row in rows)

    def clear_requests(self) -> None:
        self.control("DELETE", "requests")

    # --- LINA ----------------------------------------------------------------------------------
    def add_token(
        self,
        code: str = "",
        value="50.00",
        *,
        account: str = "demo-shop",
        remaining=None,
        valid_until=None,
        full_value_only: bool = False,
        blocked: bool = False,
    ) -> dict:
        """Create or replace a token; ``valid_until`` is an ISO date or days from today (negative: expired)."""
        payload = {
            "code": code,
            "value": str(value),
            "account": account,
            "full_value_only": full_value_only,
            "blocked": blocked,
        }
        if remaining is not None:
            payload["remaining"] = str(remaining)
        if valid_until is not None:
            payload["valid_until"] = valid_until if isinstance(valid_until, int) else str(valid_until)
        return self.control("POST", "tokens", payload)

    def token(self, code: str) -> dict | None:
        response = self.http.get(f"{self.url}/_sandbox/tokens/{code}", timeout=10)
        return None if response.status_code == 404 else response.json()

    def tokens(self, account: str | None = None) -> list[dict]:
        return self.control("GET", "tokens", **({"account": account} if account else {}))

    def set_lina_account(self, username: str, **options) -> dict:
        """Create or change an account: password, shared_key, recipe, user_field, pass_field,
        fail_threshold, fail_window_seconds, lockout_seconds, denied_status, session_ttl_seconds,
        session_max_uses, session_ip_bound, unlock."""
        return self.control("POST", "lina/accounts", {"username": username, **options})

    def add_template(
        self, name: str, hash: str, layouts=(), *, account: str = "demo-shop", **options
    ) -> dict:
        return self.control(
            "POST",
            "lina/templates",
            {"account": account, "name": name, "hash": hash, "layouts": list(layouts), **options},
        )

    def expire_sessions(self, account: str | None = None) -> int:
        return self.control("POST", "lina/sessions/expire", {"account": account})["expired"]

    def set_session_rejection(self, status: int = 400, text: str | None = None) -> dict:
        """How the sandbox rejects a session hash: 400 + status error (documented) or 401."""
        payload = {"status": status, **({"text": text} if text is not None else {})}
        return self.control("POST", "lina/session-rejection", payload)

    def set_denied_scope(self, scope: str = "address", *, reset: bool = False) -> dict:
        return self.control("POST", "lina/denied", {"scope": scope, "reset": reset})

    def set_client_ip(self, ip: str | None) -> None:
        """Make LINA see another public IP for every client (None: the real address)."""
        self.control("POST", "lina/client-ip", {"ip": ip})

    # --- Allsafe -------------------------------------------------------------------------------
    def set_stock(
        self, vendor: str, value, count: int, *, campaign: str = "demo-allsafe", vault: str | None = None
    ):
        """Make a vault (default: the campaign's first) hold exactly ``count`` vouchers."""
        payload = {"vendor": vendor, "value": value, "count": count, "campaign": campaign}
        if vault:
            payload["vault"] = vault
        return self.control("POST", "stock", payload)

    def stock(self, campaign: str | None = None) -> list[dict]:
        return self.control("GET", "stock", **({"campaign": campaign} if campaign else {}))

    def set_allsafe_campaign(self, username: str, **options) -> dict:
        """Create or change a campaign: password, status, integration_active, starts_on, ends_on, vaults,
        allocate_path, vendor_field, value_field, reference_field, availability_style,
        availability_empty ("204" or "list")."""
        return self.control("POST", "allsafe/campaigns", {"username": username, **options})


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The sandbox providers, reset to the demo data (faults cleared, journal empty)."""
    handle = Sandbox(_running_server())
    handle.reset()
    yield handle
    handle.http.close()


def sandbox_lina_shop(sandbox: Sandbox, *, code: str, read_timeout: float):
    """The sandbox's demo LINA account as a campaign, with one 40.00 token ``code``."""
    from .factories import CampaignFactory

    campaign = CampaignFactory(
        name="Sandbox shop",
        slug="sandbox-shop",
        provider="lina",
        base_url=sandbox.lina_url,
        api_username="demo-shop",
        read_timeout=read_timeout,
        credentials__password="demo-lina-password",
        credentials__shared_key="demo-lina-shared-key",
    )
    sandbox.add_token(code, "40.00")
    return campaign


def sandbox_allsafe_vault(sandbox: Sandbox, *, low_stock_threshold: int):
    """The sandbox's demo Allsafe account as a campaign."""
    from .factories import CampaignFactory

    return CampaignFactory(
        name="Demo vault",
        slug="demo-vault",
        provider="allsafe",
        base_url=sandbox.allsafe_url,
        api_username="demo-allsafe",
        low_stock_threshold=low_stock_threshold,
        credentials__password="demo-allsafe-password",
    )
