"""Gives a real Celery worker process an Allsafe client that can reach a local test server.

The worker tests (tests/tasks/test_stock_worker.py) start the worker with ``-I tests.support.stock_worker_provider``.
When the project's real clients exist (``vouchers.providers.clients.build_client``), this module
changes nothing and the worker uses them, exactly as production does. Until then it installs the
minimal HTTP client below through the same seam the fake provider uses
(``vouchers.services.providers.client_factory``). It lives in tests/ and is imported only by those
workers: nothing in vouchers/ knows about it.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

import requests

from vouchers.providers import base
from vouchers.providers.errors import AuthFailed, Misconfigured, ProviderUnavailable
from vouchers.services import providers

logger = logging.getLogger(__name__)


class MinimalAllsafeClient:
    """``GET /availability`` per /work/briefs/WIRE.md: Basic auth, 401/491 mapped, anything else
    unexpected is ProviderUnavailable. Reads only; allocating is not something these tests do."""

    def __init__(self, config: base.ProviderConfig):
        self.config = config

    def availability(self) -> base.Availability:
        url = self.config.base_url.rstrip("/") + "/availability"
        try:
            response = requests.get(
                url,
                auth=(self.config.username, self.config.password),
                timeout=(self.config.connect_timeout, self.config.read_timeout),
            )
        except requests.RequestException as exc:
            raise ProviderUnavailable(detail=type(exc).__name__) from exc
        if response.status_code == 401:
            raise AuthFailed(status_code=401)
        if response.status_code == 491:
            raise Misconfigured(status_code=491)
        if response.status_code == 204:
            return base.Availability(items=(), raw=None, nothing_left=True)  # documented: success
        if response.status_code != 200:
            raise ProviderUnavailable(status_code=response.status_code, detail=response.text[:200])
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderUnavailable(detail="not JSON") from exc
        if not isinstance(data, list):
            raise ProviderUnavailable(detail="not a list")
        items = []
        for entry in data:
            if not isinstance(entry, dict):
                raise ProviderUnavailable(detail="list entry is not an object")
            try:
                value = Decimal(str(entry.get("value")))
            except InvalidOperation as exc:
                raise ProviderUnavailable(detail="value is not a number") from exc
            items.append(
                base.StockItem(
                    vendor=entry.get("vendor"), value=value, remaining=entry.get("remaining"), raw=entry
                )
            )
        return base.Availability(items=tuple(items), raw=data)


def _install() -> str:
    try:
        from vouchers.providers.clients import build_client  # noqa: F401
    except ImportError:
        providers.client_factory = MinimalAllsafeClient
        return "the minimal test client (vouchers.providers.clients is not there yet)"
    return "the real client (vouchers.providers.clients.build_client)"


logger.warning("Stock worker tests: Allsafe calls use %s", _install())
