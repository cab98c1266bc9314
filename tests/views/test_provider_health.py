"""The admins' provider-health page: last success, recent error rate and latency per campaign."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from vouchers.models import ProviderOperation
from vouchers.providers.lina import cooldown_key
from vouchers.selectors.health import Status, percentile, provider_health_for

from ..support.factories import CampaignFactory

URL = reverse("vouchers:provider-health")


def op(campaign, *, state="succeeded", error_code="", duration_ms=100, minutes_ago=1, kind="check"):
    """A finished ledger row ``minutes_ago`` minutes old."""
    row = ProviderOperation.objects.create(
        campaign=campaign, kind=kind, state=state, error_code=error_code, duration_ms=duration_ms
    )
    when = timezone.now() - timedelta(minutes=minutes_ago)
    ProviderOperation.objects.filter(pk=row.pk).update(created_at=when, finished_at=when)
    return row


def health_of(user, campaign):
    return next(row for row in provider_health_for(user) if row.campaign == campaign)


def test_percentile_is_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([7], 0.95) == 7
    values = list(range(1, 101))
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.95) == 95


@pytest.mark.django_db
def test_error_rate_counts_provider_trouble_only(campaign_admin, lina_campaign):
    for _ in range(6):
        op(lina_campaign)
    # A business "no" is the provider working normally.
    op(lina_campaign, state="failed", error_code="TokenInvalid")
    op(lina_campaign, state="failed", error_code="RedeemRefused", kind="redeem")
    op(lina_campaign, state="failed", error_code="ProviderUnavailable", minutes_ago=3)
    op(lina_campaign, state="unknown", error_code="OutcomeUnknown", kind="redeem", minutes_ago=2)

    row = health_of(campaign_admin, lina_campaign)

    assert (row.calls, row.errors) == (10, 2)
    assert row.error_rate == pytest.approx(0.2)
    assert row.status == Status.DEGRADED
    assert row.last_error_code == "OutcomeUnknown"
    assert str(row.last_error_label) == "no answer in time"
    assert row.open_unknown == 1


@pytest.mark.django_db
def test_window_limits_the_rate_but_not_the_last_success(campaign_admin, lina_campaign, settings):
    settings.PROVIDER_HEALTH_WINDOW_MINUTES = 60
    success = op(lina_campaign, minutes_ago=600)
    for _ in range(3):
        op(lina_campaign, state="failed", error_code="ProviderUnavailable", minutes_ago=5)
    op(lina_campaign, state="failed", error_code="ProviderUnavailable", minutes_ago=120)

    row = health_of(campaign_admin, lina_campaign)

    assert (row.calls, row.errors) == (3, 3)
    assert row.status == Status.FAILING
    success.refresh_from_db()
    assert row.last_success_at == success.finished_at


@pytest.mark.django_db
def test_last_success_and_error_are_looked_up_within_the_lookback(campaign_admin, lina_campaign, settings):
    settings.PROVIDER_HEALTH_LOOKBACK_DAYS = 7
    op(lina_campaign, minutes_ago=8 * 24 * 60)
    op(lina_campaign, state="failed", error_code="AuthFailed", minutes_ago=8 * 24 * 60)

    row = health_of(campaign_admin, lina_campaign)

    assert row.last_success_at is None and row.last_error_at is None


@pytest.mark.django_db
def test_latency_percentiles_and_idle_campaigns(campaign_admin, lina_campaign, allsafe_campaign):
    for ms in range(10, 210, 10):  # 20 calls: 10 … 200 ms
        op(allsafe_campaign, duration_ms=ms, kind="poll")

    allsafe = health_of(campaign_admin, allsafe_campaign)
    lina = health_of(campaign_admin, lina_campaign)

    assert (allsafe.p50_ms, allsafe.p95_ms) == (100, 190)
    assert allsafe.status == Status.HEALTHY
    assert lina.status == Status.IDLE
    assert lina.p50_ms is None and lina.error_rate is None


@pytest.mark.django_db
def test_rate_limited_campaign_says_until_when(campaign_admin, lina_campaign):
    until = timezone.now() + timedelta(minutes=4)
    # What the LINA client stores: a POSIX timestamp, under the account's key.
    cache.set(cooldown_key(lina_campaign.base_url, lina_campaign.api_username), until.timestamp(), 300)
    op(lina_campaign)

    row = health_of(campaign_admin, lina_campaign)

    assert row.status == Status.RATE_LIMITED
    assert abs((row.rate_limited_until - until).total_seconds()) < 0.01


@pytest.mark.django_db
def test_query_count_does_not_grow_with_campaigns(campaign_admin, lina_campaign):
    from vouchers.models import Membership

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            provider_health_for(campaign_admin)
        return len(ctx.captured_queries)

    op(lina_campaign)
    few = queries()
    for n in range(5):
        campaign = CampaignFactory(name=f"Shop {n}", slug=f"shop-{n}", provider="lina")
        Membership.objects.create(user=campaign_admin, campaign=campaign)
        op(campaign, state="failed", error_code="AuthFailed")
    assert queries() == few


@pytest.mark.django_db
def test_page_shows_own_campaigns_only(client, campaign_admin, lina_campaign, other_campaign):
    op(lina_campaign, state="failed", error_code="AuthFailed")
    op(other_campaign, state="failed", error_code="ProviderUnavailable")
    client.force_login(campaign_admin)

    response = client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "LINA shop" in html
    assert "credentials refused" in html
    assert "Other shop" not in html
    assert "Provider health" in html
    assert "none in 7 days" in html  # no success yet


@pytest.mark.django_db
def test_page_in_german(client, campaign_admin, lina_campaign):
    op(lina_campaign, state="failed", error_code="ProviderUnavailable")
    client.force_login(campaign_admin)
    client.cookies["django_language"] = "de"

    html = client.get(URL, HTTP_ACCEPT_LANGUAGE="de").content.decode()

    assert "Zustand des Anbieters" in html
    assert "nicht erreichbar" in html


@pytest.mark.django_db
def test_cashier_has_no_link_and_no_access(client, cashier):
    client.force_login(cashier)
    assert URL not in client.get(reverse("vouchers:home")).content.decode()
    assert client.get(URL).status_code == 403
