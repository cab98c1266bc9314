"""Stock polling at scale (issue 17 item 3): chunked claims, concurrent calls, bulk writes,
alert work in its own step, owned poll locks, one retry layer."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from vouchers.models import ProviderOperation, StockAlert, StockLevel, StockMonitor, StockSnapshot
from vouchers.models.stock import AlertKind, AlertState
from vouchers.providers import base
from vouchers.providers.errors import AuthFailed, ProviderUnavailable
from vouchers.providers.http import session_for
from vouchers.services import locking
from vouchers.services import stock as stock_services
from vouchers.services.stock import poll_lock_key, stock_poll_alerts, stock_poll_chunk, stock_poll_dispatch
from vouchers.tasks import stock as stock_tasks

from ..support.factories import CampaignFactory

pytestmark = pytest.mark.django_db


class PerCampaignFake:
    """A provider client per campaign (by config.campaign_id): stock, failures, a delay, and a
    record of how many calls were in flight at once and on which threads they ran."""

    def __init__(self):
        self.stock: dict[int, list[tuple[str, int, int]]] = {}
        self.failures: dict[int, BaseException] = {}
        self.delay = 0.0
        self.calls: dict[int, int] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def factory(self, config):
        fake = self

        class Client:
            def availability(self):
                with fake._lock:
                    fake.calls[config.campaign_id] = fake.calls.get(config.campaign_id, 0) + 1
                    fake.in_flight += 1
                    fake.most_in_flight = max(fake.most_in_flight, fake.in_flight)
                    fake.threads.add(threading.current_thread().name)
                try:
                    time.sleep(fake.delay)
                    if config.campaign_id in fake.failures:
                        raise fake.failures[config.campaign_id]
                    items = tuple(
                        base.StockItem(vendor=v, value=Decimal(value), remaining=n, raw={})
                        for v, value, n in fake.stock.get(config.campaign_id, [("Uber", 50, 80)])
                    )
                    return base.Availability(items=items, raw=[])
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

        return Client()


@pytest.fixture
def provider(monkeypatch):
    fake = PerCampaignFake()
    monkeypatch.setattr("vouchers.services.providers.client_factory", fake.factory)
    return fake


def vaults(n: int, **kwargs):
    return [
        CampaignFactory(provider="allsafe", base_url="https://allsafe.example.test", **kwargs)
        for _ in range(n)
    ]


# --- The dispatcher: one claim per chunk ------------------------------------------------------------


def test_the_dispatcher_claims_and_enqueues_in_chunks(settings):
    settings.STOCK_POLL_CHUNK_SIZE = 2
    campaigns = vaults(5)
    chunks = []
    with TestCase.captureOnCommitCallbacks(execute=True) as callbacks:
        claimed = stock_poll_dispatch(enqueue=chunks.append)
    assert len(callbacks) == 3  # one enqueue per chunk, each after its own claim commits
    assert [len(chunk) for chunk in chunks] == [2, 2, 1]
    assert (
        sorted(claimed) == sorted(pk for chunk in chunks for pk in chunk) == sorted(c.pk for c in campaigns)
    )
    assert StockMonitor.objects.filter(next_poll_at__gt=timezone.now()).count() == 5
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert stock_poll_dispatch(enqueue=chunks.append) == []  # claimed once per interval


def test_the_claim_costs_the_same_statements_per_chunk_whatever_its_size(settings):
    vaults(12, poll_interval_minutes=5)
    vaults(3, poll_interval_minutes=1)  # two intervals: still one UPDATE per chunk

    def claim_statements(chunk_size: int) -> tuple[int, int]:
        settings.STOCK_POLL_CHUNK_SIZE = chunk_size
        StockMonitor.objects.update(next_poll_at=None)
        with CaptureQueriesContext(connection) as queries, TestCase.captureOnCommitCallbacks(execute=True):
            stock_poll_dispatch(enqueue=lambda ids: None)
        sql = [q["sql"] for q in queries.captured_queries]
        updates = [s for s in sql if s.startswith("UPDATE") and "stockmonitor" in s]
        locking_reads = [s for s in sql if "FOR UPDATE" in s]
        return len(updates), len(locking_reads)

    assert claim_statements(15) == (1, 1)
    assert claim_statements(5) == (3, 3)
    monitor = StockMonitor.objects.filter(campaign__poll_interval_minutes=1).first()
    assert monitor.next_poll_at - timezone.now() < timedelta(minutes=1, seconds=5)


# --- The chunk poll ----------------------------------------------------------------------------


def test_a_chunk_calls_the_provider_concurrently_without_database_access_in_the_threads(
    provider, settings, monkeypatch
):
    settings.STOCK_POLL_CONCURRENCY = 5
    campaigns = vaults(10)
    provider.delay = 0.2
    touched = []
    real_ensure = BaseDatabaseWrapper.ensure_connection

    def ensure_connection(self):
        if threading.current_thread() is not threading.main_thread():
            touched.append(threading.current_thread().name)
        return real_ensure(self)

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", ensure_connection)
    started = time.monotonic()
    chunk = stock_poll_chunk([c.pk for c in campaigns])
    elapsed = time.monotonic() - started

    assert {r.status for r in chunk.results.values()} == {"succeeded"}
    assert provider.most_in_flight == 5  # exactly the configured concurrency
    assert elapsed < 10 * 0.2 * 0.6  # two waves of 0.2 s, not ten calls one after another
    assert all(name.startswith("stock-poll") for name in provider.threads)
    assert touched == []  # no thread of the pool opened or used a database connection
    assert ProviderOperation.objects.filter(kind="poll", state="succeeded").count() == 10
    assert StockSnapshot.objects.count() == 10 and StockLevel.objects.count() == 10
    assert StockMonitor.objects.filter(last_success_at__isnull=False).count() == 10


def test_a_chunk_writes_its_rows_in_bulk(provider):
    small, large = vaults(2), vaults(12)

    def statements(campaigns) -> int:
        with CaptureQueriesContext(connection) as queries:
            stock_poll_chunk([c.pk for c in campaigns])
        return len(queries.captured_queries)

    statements(small), statements(large)  # first polls: monitors created
    assert statements(large) == statements(small)  # steady state: constant, whatever the chunk size


def test_one_failing_campaign_does_not_affect_the_others_in_its_chunk(provider):
    ok1, down, bug, misconfigured, ok2 = vaults(5)
    provider.failures[down.pk] = ProviderUnavailable()
    provider.failures[bug.pk] = ValueError("a bug in a parser")
    provider.failures[misconfigured.pk] = AuthFailed(status_code=401)
    provider.stock[ok2.pk] = [("Takealot", 100, 3)]  # low stock: its alert opens

    chunk = stock_poll_chunk([c.pk for c in (ok1, down, bug, misconfigured, ok2)])
    done = stock_poll_alerts(chunk.alert_work)

    results = chunk.results
    assert (results[ok1.pk].status, results[ok2.pk].status) == ("succeeded", "succeeded")
    assert (results[down.pk].error_code, results[down.pk].retryable) == ("ProviderUnavailable", True)
    assert (results[bug.pk].error_code, results[bug.pk].retryable) == ("PollCrashed", False)
    assert results[misconfigured.pk].error_code == "AuthFailed"
    states = dict(ProviderOperation.objects.values_list("campaign_id", "state"))
    assert states == {
        ok1.pk: "succeeded",
        down.pk: "failed",
        bug.pk: "failed",
        misconfigured.pk: "failed",
        ok2.pk: "succeeded",
    }
    assert set(StockSnapshot.objects.values_list("campaign_id", flat=True)) == {ok1.pk, ok2.pk}
    assert StockMonitor.objects.get(campaign=down).consecutive_failures == 1
    alerts = dict(StockAlert.objects.values_list("campaign_id", "kind"))
    assert alerts == {ok2.pk: AlertKind.LOW_STOCK, misconfigured.pk: AlertKind.MISCONFIGURED}
    assert done[ok2.pk][0] == [StockAlert.objects.get(campaign=ok2).pk]


def test_only_campaigns_whose_alerts_change_get_alert_work(provider):
    steady, low = vaults(2)
    provider.stock[low.pk] = [("Takealot", 100, 3)]
    first = stock_poll_chunk([steady.pk, low.pk])
    assert [item["campaign"] for item in first.alert_work] == [low.pk]
    stock_poll_alerts(first.alert_work)
    assert StockAlert.objects.get().state == AlertState.OPEN

    again = stock_poll_chunk([steady.pk, low.pk])  # the same stock, the alert already open and mailed
    assert again.alert_work == []

    provider.stock[low.pk] = [("Takealot", 100, 2)]  # the open alert's figure changes
    changed = stock_poll_chunk([steady.pk, low.pk])
    assert [item["campaign"] for item in changed.alert_work] == [low.pk]
    stock_poll_alerts(changed.alert_work)
    assert StockAlert.objects.get().remaining == 2


def test_alert_work_of_a_poll_that_is_no_longer_the_newest_changes_nothing(provider):
    [vault] = vaults(1)
    provider.stock[vault.pk] = [("Takealot", 100, 0)]
    older = stock_poll_chunk([vault.pk])
    provider.stock[vault.pk] = [("Takealot", 100, 90)]
    stock_poll_chunk([vault.pk])  # a newer poll is recorded before the older one's alert work runs
    stock_poll_alerts(older.alert_work)
    assert not StockAlert.objects.exists()


def test_a_chunk_task_retries_only_the_campaigns_whose_provider_was_unavailable(provider, settings):
    settings.STOCK_POLL_MAX_RETRIES = 2
    settings.STOCK_POLL_RETRY_BASE_SECONDS = 0
    fine, down = vaults(2)
    provider.failures[down.pk] = ProviderUnavailable()
    stock_tasks.stock_poll_chunk_task.apply(args=[[fine.pk, down.pk]])
    assert provider.calls == {fine.pk: 1, down.pk: 3}  # one retry layer: the task's, bounded
    assert ProviderOperation.objects.filter(campaign=down, state="failed").count() == 3


def test_a_chunk_task_queues_the_alert_work_in_its_own_task(provider, monkeypatch):
    [vault] = vaults(1)
    provider.stock[vault.pk] = [("Takealot", 100, 0)]
    queued = []
    monkeypatch.setattr(
        stock_tasks.stock_poll_alerts_task, "apply_async", lambda args, **options: queued.append(args[0])
    )
    assert stock_tasks.stock_poll_chunk_task.apply(args=[[vault.pk]]).get() == {"succeeded": 1}
    assert not StockAlert.objects.exists()  # not in the poll task
    [work] = queued
    assert stock_tasks.stock_poll_alerts_task.apply(args=[work]).get() == 0  # no admin to mail
    assert StockAlert.objects.get().kind == AlertKind.OUT_OF_STOCK


# --- Locks released only by their owner -------------------------------------------------------------


def _lock_contract():
    key = "stock-poll-lock:test"
    tokens = locking.owned_locks_acquire([key], ttl=60)
    assert list(tokens) == [key]
    assert locking.owned_locks_acquire([key], ttl=60) == {}  # held
    assert locking.owned_locks_release({key: "not-the-owner"}) == 0
    assert locking.owned_locks_acquire([key], ttl=60) == {}  # still held by its owner
    assert locking.owned_locks_release(tokens) == 1
    assert locking.owned_locks_release(tokens) == 0  # released once
    assert list(locking.owned_locks_acquire([key], ttl=60)) == [key]  # free again


def test_poll_locks_are_released_only_by_their_owner_in_the_local_cache():
    _lock_contract()


@pytest.mark.redis
def test_poll_locks_are_released_only_by_their_owner_in_redis(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ.get("REDIS_URL", ""),
            "KEY_PREFIX": f"test-{os.getpid()}",
        }
    }
    from django.core.cache import cache

    cache.delete("stock-poll-lock:test")
    assert locking._redis_client() is not None  # SET NX and compare-and-delete, not the fallback
    try:
        _lock_contract()
        # The cache's own add/delete see the same key (what an earlier poll or a test may use).
        cache.delete("stock-poll-lock:test")
        assert cache.add("stock-poll-lock:test", "someone", timeout=60)
        assert locking.owned_locks_acquire(["stock-poll-lock:test"], ttl=60) == {}
    finally:
        cache.delete("stock-poll-lock:test")


def test_a_poll_whose_lock_expired_and_was_taken_over_leaves_the_new_owner_alone(provider, monkeypatch):
    from django.core.cache import cache

    [vault] = vaults(1)
    key = poll_lock_key(vault.pk)

    def overran(*args, **kwargs):
        # The lock expired during this call and another poll took it.
        cache.set(key, "the next poll's token", timeout=60)
        return real_read(*args, **kwargs)

    real_read = stock_services._read_answer
    monkeypatch.setattr(stock_services, "_read_answer", overran)
    assert stock_poll_chunk([vault.pk]).results[vault.pk].status == "succeeded"
    assert cache.get(key) == "the next poll's token"


def test_a_campaign_whose_poll_lock_is_held_is_busy_and_the_rest_of_the_chunk_polls(provider):
    from django.core.cache import cache

    held, free = vaults(2)
    cache.add(poll_lock_key(held.pk), "someone else", timeout=60)
    results = stock_poll_chunk([held.pk, free.pk]).results
    assert (results[held.pk].status, results[free.pk].status) == ("busy", "succeeded")
    assert provider.calls == {free.pk: 1}
    assert cache.get(poll_lock_key(held.pk)) == "someone else"
    assert cache.get(poll_lock_key(free.pk)) is None  # ours, released


# --- The HTTP pool ------------------------------------------------------------------------------


def test_the_http_pool_keeps_as_many_connections_as_a_chunk_makes_calls_at_once(settings):
    settings.STOCK_POLL_CONCURRENCY = 60
    settings.PROVIDER_HTTP_POOL_SIZE = 10
    adapter = session_for(f"https://pool-{os.getpid()}-{time.monotonic_ns()}.example.test").get_adapter(
        "https://x.example.test"
    )
    assert adapter._pool_maxsize == 60
