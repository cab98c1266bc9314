"""A LINA purchase stand-in for worker processes that records every call in Redis.

Imported by the worker (tests/support/worker_settings.py: CELERY_IMPORTS). Every purchase call is
appended to a Redis list *before* the provider "works" (a slow call), so a call that a SIGKILL
interrupts is counted too, and the test process can read what reached the provider across
worker restarts. Each bulk row has its own e-mail address, which identifies the row.
"""

from __future__ import annotations

import os
import time
from decimal import Decimal

import redis

from vouchers.providers import base
from vouchers.services import providers as provider_seam

KEY = os.environ.get("SALES_TEST_RECORDER_KEY", "")
DELAY = float(os.environ.get("SALES_TEST_PURCHASE_DELAY", "0.4"))


class RecordingLinaProvider:
    def __init__(self, connection: redis.Redis, key: str):
        self.redis = connection
        self.key = key

    def purchase(self, request: base.PurchaseRequest) -> base.PurchaseResult:
        self.redis.rpush(f"{self.key}:calls", request.email)
        time.sleep(DELAY)
        serial = self.redis.incr(f"{self.key}:serial")
        code = f"W{serial:015d}"
        return base.PurchaseResult(
            code=code,
            amount=Decimal(request.amount),
            raw={"status": "OK", "code": code, "amount": str(request.amount)},
        )


def calls(connection: redis.Redis, key: str) -> list[str]:
    return [item.decode() for item in connection.lrange(f"{key}:calls", 0, -1)]


if KEY:
    _connection = redis.Redis.from_url(os.environ["REDIS_URL"])
    provider_seam.client_factory = lambda config: RecordingLinaProvider(_connection, KEY)
