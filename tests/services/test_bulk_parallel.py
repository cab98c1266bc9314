"""Bulk rows sold in parallel (SALES_BULK_CONCURRENCY threads of one run), on PostgreSQL.

Real threads with their own database connections, so these tests commit (transaction=True) and
need PostgreSQL: SQLite, and a run called inside a transaction, sell in the calling thread.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from tests.support.sales import csv_file
from vouchers.models import BulkSale, BulkSaleRow, ProviderOperation, Sale
from vouchers.models.ledger import OperationKind
from vouchers.models.sales import BulkSaleState
from vouchers.services import bulk_sales as bulk_svc
from vouchers.services import sales as svc

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def make_bulk(campaign, user, rows: int, *, state=BulkSaleState.QUEUED) -> BulkSale:
    data = csv_file(*[f"{10 + n},Standard,,,,row{n}@example.com" for n in range(rows)])
    bulk = bulk_svc.bulk_sale_create(campaign=campaign, user=user, filename="p.csv", data=data)
    BulkSale.objects.filter(pk=bulk.pk).update(state=state)
    return bulk


class InFlight:
    """Counts purchases running at the same moment inside the fake provider."""

    def __init__(self, fake, delay: float):
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.emails: list[str] = []
        self.original = fake.purchase
        self.delay = delay

    def purchase(self, request):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.emails.append(request.email)
        try:
            time.sleep(self.delay)  # the provider's latency: the window where rows overlap
            return self.original(request)
        finally:
            with self.lock:
                self.now -= 1


def assert_one_purchase_per_row(bulk: BulkSale) -> None:
    tokens = list(bulk.rows.filter(valid=True).values_list("request_token", flat=True))
    per_token = Counter(
        ProviderOperation.objects.filter(kind=OperationKind.PURCHASE, request_token__in=tokens).values_list(
            "request_token", flat=True
        )
    )
    assert all(count == 1 for count in per_token.values()), per_token.most_common(3)


def test_rows_run_in_parallel_bounded_by_the_setting(
    fake_provider, lina_campaign, marketing, lina_template, settings, monkeypatch
):
    settings.SALES_BULK_CONCURRENCY = 3
    bulk = make_bulk(lina_campaign, marketing, 15)
    meter = InFlight(fake_provider, delay=0.1)
    monkeypatch.setattr(fake_provider, "purchase", meter.purchase)
    assert bulk_svc.bulk_sale_run(bulk_sale_id=bulk.pk) == bulk_svc.RunOutcome.WORKED
    bulk.refresh_from_db()
    assert bulk.state == BulkSaleState.FINISHED and bulk.lease_owner == ""
    assert meter.most == 3  # never more than the setting, and really in parallel
    # No wall-clock assertion (a loaded machine would make it flaky): three rows seen in flight
    # at once is the proof; the speed is bench/bench_bulk.py's to measure.
    assert sorted(meter.emails) == sorted(f"row{n}@example.com" for n in range(15))
    assert Sale.objects.filter(bulk_row__bulk_sale=bulk, operation__state="succeeded").count() == 15
    assert set(bulk.rows.values_list("message", flat=True)) == {"Sold."}
    assert_one_purchase_per_row(bulk)


def test_parallel_rows_never_sell_twice_even_when_a_second_seller_races_for_them(
    fake_provider, lina_campaign, marketing, lina_template, monkeypatch
):
    """A second run that met the first on the same rows (e.g. a lease taken over while rows were
    in flight) sells through the same request tokens: each row reaches the provider once."""
    bulk = make_bulk(lina_campaign, marketing, 24)
    meter = InFlight(fake_provider, delay=0.05)
    monkeypatch.setattr(fake_provider, "purchase", meter.purchase)
    rows = list(bulk.rows.select_related("template").order_by("line_number"))

    def rogue(chunk):
        try:
            for row in chunk:
                svc.gift_token_sell(
                    campaign=lina_campaign,
                    user=marketing,
                    request_token=row.request_token,
                    amount=row.amount,
                    template=row.template,
                    email=row.email,
                    bulk_row=BulkSaleRow.objects.get(pk=row.pk),
                )
        finally:
            connection.close()

    rogues = [threading.Thread(target=rogue, args=(rows[n::3],)) for n in range(3)]
    for thread in rogues:
        thread.start()
    bulk_svc.bulk_sale_run(bulk_sale_id=bulk.pk)
    for thread in rogues:
        thread.join()
    assert len(meter.emails) == len(set(meter.emails)) == 24, Counter(meter.emails).most_common(3)
    assert fake_provider.calls["purchase"] == 24
    assert_one_purchase_per_row(bulk)
    assert Sale.objects.filter(bulk_row__bulk_sale=bulk).count() == 24
    bulk.refresh_from_db()
    assert bulk.state == BulkSaleState.FINISHED


def test_cancel_mid_batch_starts_no_new_row_and_records_those_in_flight(
    fake_provider, lina_campaign, marketing, lina_template, settings, monkeypatch
):
    settings.SALES_BULK_CONCURRENCY = 4
    bulk = make_bulk(lina_campaign, marketing, 30)
    meter = InFlight(fake_provider, delay=0.1)
    seen_at_cancel: list[int] = []

    def purchase_and_cancel(request):
        with meter.lock:
            cancel_now = not seen_at_cancel and len(meter.emails) == 5
            if cancel_now:
                seen_at_cancel.append(len(meter.emails) + 1)  # this purchase included
        if cancel_now:
            bulk_svc.bulk_sale_cancel(bulk_sale=bulk, user=marketing)  # clicked during the 6th sale
        return meter.purchase(request)

    monkeypatch.setattr(fake_provider, "purchase", purchase_and_cancel)
    bulk_svc.bulk_sale_run(bulk_sale_id=bulk.pk)
    bulk.refresh_from_db()
    assert bulk.state == BulkSaleState.CANCELLED and bulk.lease_owner == ""
    sold = Sale.objects.filter(bulk_row__bulk_sale=bulk)
    # Rows already handed out when the cancel came finish; none is started after it.
    assert seen_at_cancel[0] <= sold.count() <= seen_at_cancel[0] + settings.SALES_BULK_CONCURRENCY
    assert sold.count() < 30
    assert sold.count() == sold.filter(operation__state="succeeded").count()  # all recorded
    assert not ProviderOperation.objects.filter(state="pending").exists()
    assert len(meter.emails) == sold.count()
    assert_one_purchase_per_row(bulk)


def test_resume_after_a_stalled_lease_sends_the_interrupted_rows_to_review_and_sells_the_rest(
    fake_provider, lina_campaign, marketing, lina_template, monkeypatch
):
    bulk = make_bulk(lina_campaign, marketing, 12, state=BulkSaleState.RUNNING)
    # A run with four rows in flight died: their claims are there, no answers.
    interrupted = list(bulk.rows.order_by("line_number")[:4])
    for row in interrupted:
        svc._claim_sale(
            campaign=lina_campaign,
            user=marketing,
            kind="gift_token",
            request_token=row.request_token,
            amount=Decimal("25.00"),
            request_data={},
            sale_fields={"template": lina_template},
            bulk_row=row,
        )
    BulkSale.objects.filter(pk=bulk.pk).update(
        lease_owner="dead-run", lease_until=timezone.now() - timedelta(seconds=1)
    )
    sent = []
    monkeypatch.setattr(
        "vouchers.tasks.sales.bulk_sale_run_task.apply_async", lambda args, **options: sent.append(args[0])
    )
    assert bulk_svc.bulk_sales_resume_stalled() == 1 and sent == [bulk.pk]
    # The sweep's ownerless lease holds the batch for the message; the run takes it over.
    BulkSale.objects.filter(pk=bulk.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    meter = InFlight(fake_provider, delay=0.05)
    monkeypatch.setattr(fake_provider, "purchase", meter.purchase)
    assert bulk_svc.bulk_sale_run(bulk_sale_id=sent[0]) == bulk_svc.RunOutcome.WORKED
    bulk.refresh_from_db()
    assert bulk.state == BulkSaleState.FINISHED
    states = Counter(Sale.objects.filter(bulk_row__bulk_sale=bulk).values_list("operation__state", flat=True))
    assert states == {"needs_review": 4, "succeeded": 8}
    assert sorted(meter.emails) == sorted(f"row{n}@example.com" for n in range(4, 12))  # never resent
    assert meter.most > 1
    assert_one_purchase_per_row(bulk)


def test_a_seller_that_crashes_stops_the_batch_after_the_others_finish(
    fake_provider, lina_campaign, marketing, lina_template, monkeypatch
):
    """An unexpected error (not a provider error: e.g. the database went away) is raised by the
    run once the rows in flight are recorded; the lease then runs out and the sweep resumes."""
    bulk = make_bulk(lina_campaign, marketing, 10)
    original = bulk_svc._row_message

    def broken(sale):
        if sale.bulk_row.line_number == 3:
            raise RuntimeError("database went away")
        return original(sale)

    monkeypatch.setattr(bulk_svc, "_row_message", broken)
    fake_provider.slow_down("purchase", 0.05)
    with pytest.raises(RuntimeError):
        bulk_svc.bulk_sale_run(bulk_sale_id=bulk.pk)
    bulk.refresh_from_db()
    assert bulk.state == BulkSaleState.RUNNING  # not finished: stalled once its lease runs out
    assert not ProviderOperation.objects.filter(state="pending").exists()
    assert fake_provider.calls["purchase"] < 10
    assert_one_purchase_per_row(bulk)


def test_a_batch_cancelled_while_queued_starts_no_row(fake_provider, lina_campaign, marketing, lina_template):
    bulk = make_bulk(lina_campaign, marketing, 8)
    bulk_svc.bulk_sale_cancel(bulk_sale=bulk, user=marketing)  # queued: the run sees it first
    assert bulk_svc.bulk_sale_run(bulk_sale_id=bulk.pk) == bulk_svc.RunOutcome.WORKED
    bulk.refresh_from_db()
    assert bulk.state == BulkSaleState.CANCELLED and bulk.note == "Cancelled by a person."
    assert fake_provider.calls["purchase"] == 0 and not Sale.objects.exists()
    assert not bulk.rows.exclude(message="").exists()  # handed out, never started
