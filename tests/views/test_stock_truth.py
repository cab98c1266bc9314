"""The stock pages tell the truth (issue 19, item 4), in English and German: one open alert per
item, alert text from current figures, days-to-empty from two polls, demo history, currencies."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from vouchers.models import Campaign, ProviderOperation, Sale, StockAlert, StockLevel, StockSnapshot
from vouchers.models.stock import AlertKind, AlertState
from vouchers.selectors.stock import days_to_empty, stock_detail
from vouchers.services.stock import ThresholdOverride, stock_poll, stock_thresholds_save

pytestmark = pytest.mark.django_db

DETAIL = reverse("vouchers:stock-detail", kwargs={"campaign": "allsafe-vault"})


@pytest.fixture
def german():
    """A second browser, which chose German with the language switcher (the cookie it sets)."""
    browser = Client()
    browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "de"
    return browser


def open_kinds(campaign):
    return sorted(
        StockAlert.objects.filter(campaign=campaign, state=AlertState.OPEN).values_list("kind", flat=True)
    )


def test_at_zero_only_out_of_stock_is_open_and_low_is_resolved_as_superseded(
    client, marketing, allsafe_campaign, fake_provider
):
    fake_provider.set_stock("Takealot", 100, 3)
    stock_poll(campaign_id=allsafe_campaign.pk)
    assert open_kinds(allsafe_campaign) == [AlertKind.LOW_STOCK]

    fake_provider.set_stock("Takealot", 100, 0)
    stock_poll(campaign_id=allsafe_campaign.pk)

    assert open_kinds(allsafe_campaign) == [AlertKind.OUT_OF_STOCK]
    low = StockAlert.objects.get(campaign=allsafe_campaign, kind=AlertKind.LOW_STOCK)
    assert low.state == AlertState.RESOLVED and "Superseded" in low.resolution
    client.force_login(marketing)
    body = client.get(DETAIL).content.decode()
    assert "No Takealot R 100.00 vouchers are left." in body
    assert "Only 3 Takealot" not in body.split('id="current"')[0]  # no low alert among the open ones


def test_an_open_alert_quotes_the_current_threshold_and_count(
    client, german, marketing, allsafe_campaign, fake_provider
):
    fake_provider.set_stock("Takealot", 100, 4)
    stock_poll(campaign_id=allsafe_campaign.pk)  # default threshold 10
    stock_thresholds_save(
        campaign=allsafe_campaign,
        actor=marketing,
        default_threshold=10,
        overrides=[ThresholdOverride("Takealot", None, 20)],
    )
    client.force_login(marketing)
    body = client.get(DETAIL).content.decode()
    assert "Only 4 Takealot R 100.00 vouchers are left (threshold 20)." in body
    assert "threshold 10" not in body

    fake_provider.set_stock("Takealot", 100, 2)  # still low: the same alert, its count updated
    stock_poll(campaign_id=allsafe_campaign.pk)
    [alert] = StockAlert.objects.filter(campaign=allsafe_campaign, state=AlertState.OPEN)
    assert (alert.remaining, alert.threshold) == (2, 20)
    german.force_login(marketing)
    text = german.get(DETAIL).content.decode()
    assert "Nur noch 2 Gutscheine Takealot R 100,00 übrig (Schwellenwert 20)." in text


def test_days_to_empty_is_shown_after_two_polls_with_a_drop(client, german, marketing, allsafe_campaign):
    now = timezone.now()
    points = [(now - timedelta(minutes=1), 50), (now, 48)]
    assert days_to_empty(points) == pytest.approx(48 / (2 * 1440))
    for taken_at, remaining in points:
        snapshot = StockSnapshot.objects.create(campaign=allsafe_campaign, taken_at=taken_at)
        StockLevel.objects.create(snapshot=snapshot, vendor="Uber", value=Decimal("50"), remaining=remaining)
    client.force_login(marketing)
    assert "less than a day" in client.get(DETAIL).content.decode()
    german.force_login(marketing)
    assert "weniger als ein Tag" in german.get(DETAIL).content.decode()


def test_seed_demo_gives_a_chart_with_history_and_an_estimate_on_first_run(client, settings):
    settings.PRODUCTION = False
    call_command("seed_demo", "--quiet-passwords")
    vault = Campaign.objects.get(slug="demo-allsafe")
    seeded = StockSnapshot.objects.filter(campaign=vault).count()
    first = StockSnapshot.objects.filter(campaign=vault).order_by("taken_at").first()
    assert timezone.now() - first.taken_at >= timedelta(days=14)  # a few weeks: beyond the 7-day chart

    detail = stock_detail(vault)  # the default 7-day range
    assert not detail.chart.is_empty
    estimates = {(row.vendor, row.value): row.days_to_empty for row in detail.rows}
    assert estimates[("Takealot", Decimal("100.00"))] is not None
    assert estimates[("Checkers", Decimal("100.00"))] is None  # empty: nothing to estimate
    assert all(row.remaining is not None for row in detail.rows)

    call_command("seed_demo", "--quiet-passwords")  # run again: nothing duplicated
    assert StockSnapshot.objects.filter(campaign=vault).count() == seeded


@pytest.mark.parametrize(("language", "expected"), [("en", "R 1,000.00"), ("de", "R 1.000,00")])
def test_stock_amounts_carry_the_rand_sign(
    client, marketing, allsafe_campaign, fake_provider, language, expected
):
    fake_provider.set_stock("Takealot", 1000, 50)
    stock_poll(campaign_id=allsafe_campaign.pk)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    client.force_login(marketing)
    body = client.get(DETAIL).content.decode()
    assert expected in body and "€" not in body.split("<main")[1]


def _rows(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_the_ledger_file_names_each_amounts_currency(client, campaign_admin, lina_campaign, allsafe_campaign):
    ProviderOperation.objects.create(
        campaign=lina_campaign,
        kind="redeem",
        state="succeeded",
        amount=Decimal("12.50"),
        request_token="t-eur",
    )
    ProviderOperation.objects.create(
        campaign=allsafe_campaign,
        kind="allocate",
        state="succeeded",
        amount=Decimal("100.00"),
        request_token="t-zar",
    )
    client.force_login(campaign_admin)
    header, *rows = _rows(client.get(reverse("vouchers:ledger-list"), {"export": "csv"}))
    amount, currency = header.index("amount"), header.index("currency")
    assert sorted((row[amount], row[currency]) for row in rows) == [("100.00", "ZAR"), ("12.50", "EUR")]
    page = client.get(reverse("vouchers:ledger-list")).content.decode()
    assert "12.50 €" in page and "R 100.00" in page


def test_the_sales_list_filters_by_currency(client, marketing, lina_campaign, allsafe_campaign):
    for campaign, amount in ((lina_campaign, "25"), (allsafe_campaign, "100")):
        operation = ProviderOperation.objects.create(
            campaign=campaign,
            kind="purchase" if campaign.is_lina else "allocate",
            state="succeeded",
            amount=Decimal(amount),
            request_token=f"t-{campaign.slug}",
        )
        Sale.objects.create(
            campaign=campaign,
            kind="gift_token" if campaign.is_lina else "digital_voucher",
            seller=marketing,
            amount=Decimal(amount),
            operation=operation,
        )
    client.force_login(marketing)
    rand = client.get(reverse("vouchers:sale-list"), {"currency": "ZAR"})
    assert [r.record.campaign for r in rand.context["table"].page.object_list] == [allsafe_campaign]
    assert "R 100.00" in rand.content.decode()
    euro = client.get(reverse("vouchers:sale-list"), {"currency": "EUR"})
    assert [r.record.campaign for r in euro.context["table"].page.object_list] == [lina_campaign]
