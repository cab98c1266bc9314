"""Celery tasks of the stock area: thin shells over vouchers.services.stock.

The dispatcher (one beat entry, every minute) claims the due campaigns a chunk at a time and
queues one :func:`stock_poll_chunk_task` per chunk of STOCK_POLL_CHUNK_SIZE campaigns; each chunk
task makes its provider calls concurrently, writes the results in bulk and hands the campaigns
whose alerts change to :func:`stock_poll_alerts_task` (alerts and their e-mail). Chunks run in
parallel on however many worker processes there are. Late acks and prefetch 1 are global
settings (portal/settings.py).

One retry layer for polls, this one: the availability call is sent once (no HTTP-level retry,
ProviderConfig.read_retries=0), and a campaign whose provider was unavailable or rate-limited is polled
again by a later task, with backoff and jitter, up to STOCK_POLL_MAX_RETRIES times. Here rather
than in the HTTP layer because a retry there would hold a pool thread (and so the whole chunk)
through its backoff, would be invisible in the ledger, and could not wait for a rate limit's
``retry_at``; here each attempt is its own ledger row and only the failed campaigns go again.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from ..services.queueing import enqueue_or_log
from ..services.stock import (
    POLL_SOFT_TIME_LIMIT,
    POLL_TIME_LIMIT,
    chunk_time_limits,
    stock_history_cleanup,
    stock_poll,
    stock_poll_alerts,
    stock_poll_chunk,
    stock_poll_dispatch,
)

#: No retry waits longer than this; the next scheduled poll comes anyway.
MAX_RETRY_DELAY_SECONDS = 600
CHUNK_SOFT_TIME_LIMIT, CHUNK_TIME_LIMIT, _CHUNK_LOCK_SECONDS = chunk_time_limits(
    settings.STOCK_POLL_CHUNK_SIZE, settings.STOCK_POLL_CONCURRENCY
)


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
    """Enqueue one chunk poll per chunk of due campaigns (after its claim commits); returns how
    many campaigns."""
    # A chunk that cannot be queued (broker gone) is logged; its campaigns' next interval polls.
    return len(stock_poll_dispatch(enqueue=lambda ids: enqueue_or_log(stock_poll_chunk_task, ids)))


@shared_task(bind=True, soft_time_limit=CHUNK_SOFT_TIME_LIMIT, time_limit=CHUNK_TIME_LIMIT, max_retries=None)
def stock_poll_chunk_task(self, campaign_ids: list[int]) -> dict[str, int]:
    """Poll a chunk of campaigns; queue their alert work; retry only the campaigns whose provider
    was unavailable or rate-limited (bounded, backoff with jitter, the latest ``retry_at``).
    Returns how many polls ended in each status."""
    chunk = stock_poll_chunk(campaign_ids)
    if chunk.alert_work:
        enqueue_or_log(stock_poll_alerts_task, chunk.alert_work)
    retry = {pk: r for pk, r in chunk.results.items() if r.retryable}
    if retry and self.request.retries < settings.STOCK_POLL_MAX_RETRIES:
        retry_at = max((r.retry_at for r in retry.values() if r.retry_at), default=None)
        # The same task again for the failed campaigns only; this chunk's rows are recorded.
        raise self.retry(args=[sorted(retry)], countdown=retry_delay(self.request.retries, retry_at=retry_at))
    return dict(Counter(r.status for r in chunk.results.values()))


@shared_task(ignore_result=True, soft_time_limit=600, time_limit=630)
def stock_poll_alerts_task(work: list[dict]) -> int:
    """Open/resolve the alerts of a chunk's polls and send their e-mail; returns e-mails sent."""
    return sum(sent for _opened, _resolved, sent in stock_poll_alerts(work).values())


@shared_task(bind=True, soft_time_limit=POLL_SOFT_TIME_LIMIT, time_limit=POLL_TIME_LIMIT, max_retries=None)
def stock_poll_task(self, campaign_id: int) -> str:
    """Poll one campaign (alerts and e-mail included). Retried (bounded, backoff with jitter)
    only when the provider was unavailable or rate-limited; every attempt is its own ledger row.
    Safe to run twice."""
    result = stock_poll(campaign_id=campaign_id)
    if result.retryable and self.request.retries < settings.STOCK_POLL_MAX_RETRIES:
        raise self.retry(countdown=retry_delay(self.request.retries, retry_at=result.retry_at))
    return result.status


@shared_task(ignore_result=True, soft_time_limit=1800, time_limit=1900)
def stock_history_cleanup_task() -> int:
    """Delete stock history older than STOCK_HISTORY_DAYS (idempotent)."""
    return stock_history_cleanup()
