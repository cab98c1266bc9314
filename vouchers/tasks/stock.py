"""Celery tasks of the stock area: thin shells over vouchers.services.stock.

The dispatcher (one beat entry, every minute) fans out one :func:`stock_poll_task` per due
campaign; polls of different campaigns run in parallel on however many workers there are.
Late acks and prefetch 1 are global settings (portal/settings.py).
"""

from __future__ import annotations

import random
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from ..services.queueing import enqueue_or_log
from ..services.stock import (
    POLL_SOFT_TIME_LIMIT,
    POLL_TIME_LIMIT,
    stock_history_cleanup,
    stock_poll,
    stock_poll_dispatch,
)

#: No retry waits longer than this; the next scheduled poll comes anyway.
MAX_RETRY_DELAY_SECONDS = 600


def retry_delay(retries: int, *, retry_at: datetime | None = None) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random, so many
    campaigns that failed together (one provider outage) do not all retry in the same second."""
    step = min(MAX_RETRY_DELAY_SECONDS, settings.STOCK_POLL_RETRY_BASE_SECONDS * 2**retries)
    delay = step / 2 + random.uniform(0, step / 2)  # noqa: S311 (jitter, not cryptography)
    if retry_at is not None:
        delay = max(delay, (retry_at - timezone.now()).total_seconds())
    return min(delay, MAX_RETRY_DELAY_SECONDS)


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=58)
def stock_poll_dispatch_task() -> int:
    """Enqueue one poll per due campaign (after the claim commits); returns how many."""
    # A poll that cannot be queued (broker gone) is logged; the campaign's next interval polls.
    return len(stock_poll_dispatch(enqueue=lambda campaign_id: enqueue_or_log(stock_poll_task, campaign_id)))


@shared_task(bind=True, soft_time_limit=POLL_SOFT_TIME_LIMIT, time_limit=POLL_TIME_LIMIT, max_retries=None)
def stock_poll_task(self, campaign_id: int) -> str:
    """Poll one campaign. Retried (bounded, backoff with jitter) only when the provider was
    unavailable or rate-limited; every attempt is its own ledger row. Safe to run twice."""
    result = stock_poll(campaign_id=campaign_id)
    if result.retryable and self.request.retries < settings.STOCK_POLL_MAX_RETRIES:
        raise self.retry(countdown=retry_delay(self.request.retries, retry_at=result.retry_at))
    return result.status


@shared_task(ignore_result=True, soft_time_limit=1800, time_limit=1900)
def stock_history_cleanup_task() -> int:
    """Delete stock history older than STOCK_HISTORY_DAYS (idempotent)."""
    return stock_history_cleanup()
