"""The scheduled sweep puts stalled bulk batches back on the queue, once per lease."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from vouchers.models import AuditEvent, BulkSale
from vouchers.models.sales import BulkSaleState
from vouchers.services.bulk_sales import bulk_sales_resume_stalled

pytestmark = pytest.mark.django_db


def test_stalled_running_batch_is_requeued_once(
    lina_campaign, marketing, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        "vouchers.tasks.sales.bulk_sale_run_task.apply_async", lambda args, **options: sent.append(args[0])
    )
    stalled = BulkSale.objects.create(
        campaign=lina_campaign,
        created_by=marketing,
        state=BulkSaleState.RUNNING,
        lease_owner="dead-worker",
        lease_until=timezone.now() - timedelta(seconds=5),
    )
    healthy = BulkSale.objects.create(
        campaign=lina_campaign,
        created_by=marketing,
        state=BulkSaleState.RUNNING,
        lease_owner="live-worker",
        lease_until=timezone.now() + timedelta(minutes=4),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert bulk_sales_resume_stalled() == 1
    assert sent == [stalled.pk]
    assert AuditEvent.objects.filter(action="bulk_sale.resumed", object_id=str(stalled.pk)).exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert bulk_sales_resume_stalled() == 0  # its fresh lease keeps the next sweep away
    assert healthy.pk not in sent
