"""The bulk-sale job on a real Celery worker and real Redis, killed mid-batch and restarted.

The restarted worker takes the batch over when a person resumes it (the page offers "Resume" as
soon as the dead run's lease has run out); the unacked task message itself would come back only
after the broker's visibility timeout, and finds nothing left to do then.

The worker process cannot reach the in-process fake provider, so it runs with
tests/support/worker_settings.py, which puts tests/support/recording_provider.py into the provider seam:
every purchase that reaches "the provider" is recorded in Redis before it is served, and so
survives a SIGKILL of the worker. The test compares those calls with the ledger.
"""

from __future__ import annotations

import uuid

import pytest
import redis

from portal.processes import wait_until
from tests.support.recording_provider import calls
from tests.support.sales import csv_file
from vouchers.models import BulkSale, ProviderOperation, Sale
from vouchers.services import bulk_sales as bulk_svc

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

ROWS = 20


@pytest.fixture
def recording_worker(monkeypatch, request):
    """Start workers with the recording provider; yields (start, redis connection, key)."""
    import os

    key = f"test-sales-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.support.worker_settings")
    monkeypatch.setenv("SALES_TEST_RECORDER_KEY", key)
    monkeypatch.setenv("SALES_TEST_PURCHASE_DELAY", "0.4")
    start = request.getfixturevalue("celery_worker_process")
    connection = redis.Redis.from_url(os.environ["REDIS_URL"])
    yield start, connection, key
    connection.delete(f"{key}:calls", f"{key}:serial")


def wait_for(predicate, timeout: float, what: str, worker=None):
    if worker is not None:
        worker.wait_until(predicate, timeout=timeout, what=what)
    else:
        wait_until(predicate, timeout=timeout, what=what)


def test_worker_killed_mid_batch_and_restarted_sells_no_row_twice(
    recording_worker, lina_campaign, lina_template, marketing, settings
):
    start, connection, key = recording_worker
    data = csv_file(*[f"{10 + n},Standard,,,,row{n}@example.com" for n in range(ROWS)])
    bulk = bulk_svc.bulk_sale_create(campaign=lina_campaign, user=marketing, filename="w.csv", data=data)
    worker = start()
    bulk_svc.bulk_sale_start(bulk_sale=bulk, user=marketing)  # on_commit → the task goes to Redis

    wait_for(lambda: Sale.objects.filter(bulk_row__bulk_sale=bulk).count() >= 5, 60, "five rows", worker)
    worker.kill()  # SIGKILL, most likely during a provider call
    sold_before_kill = Sale.objects.filter(bulk_row__bulk_sale=bulk).count()
    assert sold_before_kill < ROWS, "the batch finished before the kill; the test proves nothing"

    worker.start()
    # The dead run's lease runs out; the page then offers "Resume", which re-queues the job.
    wait_for(
        lambda: bulk_svc.bulk_sale_is_stalled(BulkSale.objects.get(pk=bulk.pk)), 30, "the lease to run out"
    )
    bulk_svc.bulk_sale_resume(bulk_sale=bulk, user=marketing)
    wait_for(lambda: BulkSale.objects.get(pk=bulk.pk).state == "finished", 90, "the batch to finish", worker)

    recorded = calls(connection, key)
    assert len(recorded) == len(set(recorded)), f"a row reached the provider twice: {recorded}"
    operations = ProviderOperation.objects.filter(sale__bulk_row__bulk_sale=bulk)
    assert operations.count() == ROWS  # one operation per row, all rows reached
    states = sorted(operations.values_list("state", flat=True))
    # Only rows the kill interrupted: up to SALES_BULK_CONCURRENCY rows are in flight at once.
    in_flight = settings.SALES_BULK_CONCURRENCY
    assert states.count("needs_review") <= in_flight
    assert states.count("succeeded") == ROWS - states.count("needs_review")
    # Every succeeded row reached the provider exactly once.
    succeeded_emails = set(
        Sale.objects.filter(bulk_row__bulk_sale=bulk, operation__state="succeeded").values_list(
            "email", flat=True
        )
    )
    assert succeeded_emails <= set(recorded)
    # Rows claimed just before the kill may not have been sent.
    assert ROWS - in_flight <= len(recorded) <= ROWS
