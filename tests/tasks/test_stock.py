"""The stock tasks in this process (eager): bounded retries with backoff, the beat entries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.beat_schedule import BEAT_SCHEDULE
from portal.celery import app
from vouchers.models import ProviderOperation
from vouchers.providers.errors import AuthFailed, ProviderUnavailable
from vouchers.services.stock import POLL_SOFT_TIME_LIMIT, POLL_TIME_LIMIT
from vouchers.tasks import stock as stock_tasks

pytestmark = pytest.mark.django_db


def test_unavailable_provider_is_retried_a_bounded_number_of_times(allsafe_campaign, fake_provider, settings):
    settings.STOCK_POLL_MAX_RETRIES = 2
    for _ in range(10):
        fake_provider.fail_next("availability", ProviderUnavailable())
    stock_tasks.stock_poll_task.apply(args=[allsafe_campaign.pk])
    assert fake_provider.calls["availability"] == 3
    assert ProviderOperation.objects.filter(state="failed").count() == 3  # every attempt is on record


def test_auth_failures_are_not_retried(allsafe_campaign, fake_provider):
    fake_provider.fail_next("availability", AuthFailed(status_code=401))
    result = stock_tasks.stock_poll_task.apply(args=[allsafe_campaign.pk])
    assert result.get() == "failed"
    assert fake_provider.calls["availability"] == 1


def test_a_successful_poll_task(allsafe_campaign, fake_provider):
    fake_provider.set_stock("Uber", 50, 20)
    assert stock_tasks.stock_poll_task.apply(args=[allsafe_campaign.pk]).get() == "succeeded"


def test_retry_delay_grows_with_jitter_and_is_bounded(settings):
    settings.STOCK_POLL_RETRY_BASE_SECONDS = 20
    first = [stock_tasks.retry_delay(0) for _ in range(50)]
    assert all(10 <= d <= 20 for d in first) and len(set(first)) > 1
    assert all(40 <= stock_tasks.retry_delay(2) <= 80 for _ in range(20))
    assert stock_tasks.retry_delay(30) <= stock_tasks.MAX_RETRY_DELAY_SECONDS
    later = timezone.now() + timedelta(seconds=300)
    assert stock_tasks.retry_delay(0, retry_at=later) >= 290


def test_time_limits_sit_above_the_largest_allowed_http_timeouts():
    from vouchers.models import Campaign

    def largest(field):
        return max(
            v.limit_value for v in Campaign._meta.get_field(field).validators if hasattr(v, "limit_value")
        )

    assert largest("connect_timeout") + largest("read_timeout") < POLL_SOFT_TIME_LIMIT
    assert stock_tasks.stock_poll_task.soft_time_limit == POLL_SOFT_TIME_LIMIT
    assert stock_tasks.stock_poll_task.time_limit == POLL_TIME_LIMIT > POLL_SOFT_TIME_LIMIT


def test_one_beat_entry_dispatches_polls_every_minute():
    polling = [
        e for e in BEAT_SCHEDULE.values() if e["task"] == "vouchers.tasks.stock.stock_poll_dispatch_task"
    ]
    assert len(polling) == 1 and polling[0]["schedule"] == 60.0
    for entry in BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks
    assert app.conf.beat_schedule.keys() >= BEAT_SCHEDULE.keys()


def test_dispatch_task_enqueues_one_chunk_poll_per_chunk_of_due_campaigns(
    allsafe_campaign, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        stock_tasks.stock_poll_chunk_task, "apply_async", lambda args, **options: sent.append(args[0])
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert stock_tasks.stock_poll_dispatch_task.apply().get() == 1
    assert sent == [[allsafe_campaign.pk]]
