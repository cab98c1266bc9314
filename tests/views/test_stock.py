"""Stock pages with the Django test client: permissions, scoping, content, the thresholds form."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from vouchers.models import AuditEvent, StockAlert, StockLevel, StockSnapshot, StockThreshold
from vouchers.selectors.stock import days_to_empty
from vouchers.services.stock import stock_poll

from ..support.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def detail_url(slug="allsafe-vault", **query):
    url = reverse("vouchers:stock-detail", kwargs={"campaign": slug})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def thresholds_url(slug="allsafe-vault"):
    return reverse("vouchers:stock-thresholds", kwargs={"campaign": slug})


def history(campaign, vendor, value, counts, *, hours_apart=6):
    """Snapshots ``hours_apart`` apart ending now, with ``counts`` of one voucher type."""
    now = timezone.now()
    for index, remaining in enumerate(counts):
        snapshot = StockSnapshot.objects.create(
            campaign=campaign, taken_at=now - timedelta(hours=hours_apart * (len(counts) - 1 - index))
        )
        StockLevel.objects.create(snapshot=snapshot, vendor=vendor, value=Decimal(value), remaining=remaining)


def test_permissions_and_scoping(
    client, cashier, marketing, campaign_admin, outsider, allsafe_campaign, lina_campaign
):
    other_allsafe = CampaignFactory(provider="allsafe", slug="other-vault", name="Other vault")
    client.force_login(cashier)
    assert client.get(reverse("vouchers:stock-dashboard")).status_code == 403
    assert client.get(detail_url()).status_code == 403

    client.force_login(marketing)  # may look, may not edit
    assert client.get(reverse("vouchers:stock-dashboard")).status_code == 200
    assert client.get(detail_url()).status_code == 200
    assert client.get(thresholds_url()).status_code == 403
    assert b"Edit thresholds" not in client.get(detail_url()).content

    client.force_login(campaign_admin)
    assert client.get(thresholds_url()).status_code == 200
    assert client.get(detail_url("other-vault")).status_code == 404  # not a member
    assert client.get(detail_url("lina-shop")).status_code == 404  # not an Allsafe campaign
    assert client.get(thresholds_url("other-vault")).status_code == 404
    body = client.get(reverse("vouchers:stock-dashboard")).content.decode()
    assert "Allsafe vault" in body and other_allsafe.name not in body

    client.force_login(outsider)
    assert client.get(detail_url()).status_code == 404
    assert client.post(thresholds_url(), {}).status_code == 404


def test_navigation_shows_stock_to_roles_that_may_see_it(client, cashier, marketing):
    client.force_login(marketing)
    assert reverse("vouchers:stock-dashboard") in client.get(reverse("vouchers:home")).content.decode()
    client.force_login(cashier)
    assert reverse("vouchers:stock-dashboard") not in client.get(reverse("vouchers:home")).content.decode()


def test_dashboard_lists_open_alerts_of_own_campaigns_only(
    client, marketing, allsafe_campaign, fake_provider
):
    other = CampaignFactory(provider="allsafe", name="Hidden vault")
    fake_provider.set_stock("Takealot", 100, 1)
    stock_poll(campaign_id=allsafe_campaign.pk)
    stock_poll(campaign_id=other.pk)
    assert StockAlert.objects.filter(campaign=other).exists()
    client.force_login(marketing)
    body = client.get(reverse("vouchers:stock-dashboard")).content.decode()
    assert "Only 1 Takealot R 100.00 vouchers are left" in body  # with its currency (issue 19)
    assert "Hidden vault" not in body
    assert "healthy" in body


def test_detail_shows_stock_chart_alerts_health_and_estimate(
    client, marketing, allsafe_campaign, fake_provider
):
    history(allsafe_campaign, "Takealot", "100", [100, 90, 80, 70, 60])  # 40 used in 24 h
    fake_provider.set_stock("Takealot", 100, 5)
    stock_poll(campaign_id=allsafe_campaign.pk)
    client.force_login(marketing)
    response = client.get(detail_url())
    body = response.content.decode()
    assert response.status_code == 200
    stock = response.context["stock"]
    [row] = stock.rows
    assert (row.vendor, row.remaining, row.threshold, row.state) == ("Takealot", 5, 10, "low")
    assert row.days_to_empty is not None and row.days_to_empty < 1
    assert "less than a day" in body
    assert "<svg" in body and "<polyline" in body and "<script" not in body.split("</main>")[0]
    assert len(stock.chart.series) == 1 and stock.chart.series[0].last == 5
    assert "Low stock" in body and "healthy" in body
    assert "Last successful poll" in body


def test_detail_of_a_campaign_never_polled_and_a_bad_range(client, marketing, allsafe_campaign):
    client.force_login(marketing)
    response = client.get(detail_url(days="banana"))
    assert response.status_code == 200
    assert response.context["stock"].chart_days == 7
    assert b"not been polled successfully" in response.content
    assert b"not polled yet" in response.content
    assert client.get(detail_url(days="99999999999999999999")).status_code == 200


def test_detail_shows_what_to_check_for_a_misconfiguration(
    client, marketing, allsafe_campaign, fake_provider
):
    from vouchers.providers.errors import AuthFailed

    fake_provider.fail_next("availability", AuthFailed(status_code=401))
    stock_poll(campaign_id=allsafe_campaign.pk)
    client.force_login(marketing)
    body = client.get(detail_url()).content.decode()
    assert "integration was revoked" in body
    assert "polls failing" in body


def test_days_to_empty_ignores_restocks_and_needs_consumption():
    now = timezone.now()
    points = [(now - timedelta(days=2), 100), (now - timedelta(days=1), 80), (now, 60)]
    assert days_to_empty(points) == pytest.approx(3.0)
    restocked = [(now - timedelta(days=2), 100), (now - timedelta(days=1), 80), (now, 180)]
    assert days_to_empty(restocked) == pytest.approx(18.0)  # 20 used in 2 days, 180 left
    assert days_to_empty([(now - timedelta(days=1), 50), (now, 50)]) is None
    assert days_to_empty([(now, 50)]) is None


def test_thresholds_form_saves_overrides_and_audits(client, campaign_admin, allsafe_campaign):
    client.force_login(campaign_admin)
    page = client.get(thresholds_url())
    assert page.status_code == 200 and b'name="default_threshold"' in page.content
    response = client.post(
        thresholds_url(),
        {
            "default_threshold": "15",
            "overrides-TOTAL_FORMS": "3",
            "overrides-INITIAL_FORMS": "0",
            "overrides-0-vendor": "Takealot",
            "overrides-0-value": "100",
            "overrides-0-threshold": "4",
            "overrides-1-vendor": " Uber ",
            "overrides-1-value": "",
            "overrides-1-threshold": "7",
            "overrides-2-vendor": "",
            "overrides-2-value": "",
            "overrides-2-threshold": "",
        },
    )
    assert response.status_code == 302 and response["Location"] == detail_url()
    allsafe_campaign.refresh_from_db()
    assert allsafe_campaign.low_stock_threshold == 15
    assert set(StockThreshold.objects.values_list("vendor", "value", "threshold")) == {
        ("Takealot", Decimal("100.00"), 4),
        ("Uber", None, 7),
    }
    event = AuditEvent.objects.get(action="stock.thresholds_changed")
    assert event.actor == campaign_admin and event.campaign == allsafe_campaign

    # The saved rules come back in the form, and can be removed.
    page = client.get(thresholds_url()).content.decode()
    assert 'value="Takealot"' in page
    response = client.post(
        thresholds_url(),
        {
            "default_threshold": "15",
            "overrides-TOTAL_FORMS": "2",
            "overrides-INITIAL_FORMS": "2",
            "overrides-0-vendor": "Takealot",
            "overrides-0-value": "100.00",
            "overrides-0-threshold": "4",
            "overrides-0-DELETE": "on",
            "overrides-1-vendor": "Uber",
            "overrides-1-value": "",
            "overrides-1-threshold": "7",
        },
    )
    assert response.status_code == 302
    assert list(StockThreshold.objects.values_list("vendor", flat=True)) == ["Uber"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"default_threshold": "-1"}, "greater than or equal to 0"),
        ({"default_threshold": "ten"}, "Enter a whole number"),
        ({"default_threshold": ""}, "This field is required"),
        (
            {"overrides-0-vendor": "Uber", "overrides-0-value": "-5", "overrides-0-threshold": "3"},
            "greater than or equal to 0.01",
        ),
        (
            {"overrides-0-vendor": "Uber", "overrides-0-value": "5.555", "overrides-0-threshold": "3"},
            "no more than 2 decimal places",
        ),
        (
            {"overrides-0-vendor": "", "overrides-0-value": "5", "overrides-0-threshold": "3"},
            "This field is required",
        ),
        ({"overrides-0-vendor": "Uber", "overrides-0-threshold": "lots"}, "Enter a whole number"),
        (
            {
                "overrides-0-vendor": "Uber",
                "overrides-0-threshold": "3",
                "overrides-1-vendor": "uber",
                "overrides-1-threshold": "4",
            },
            "Row 1 already sets a threshold",
        ),
        ({"overrides-0-vendor": "x" * 200, "overrides-0-threshold": "3"}, "at most 120 characters"),
    ],
)
def test_thresholds_form_bad_input_gets_a_message_and_keeps_what_was_typed(
    client, campaign_admin, allsafe_campaign, data, message
):
    client.force_login(campaign_admin)
    post = {"default_threshold": "12", "overrides-TOTAL_FORMS": "3", "overrides-INITIAL_FORMS": "0", **data}
    response = client.post(thresholds_url(), post)
    assert response.status_code == 200
    body = response.content.decode()
    assert message in body
    assert "Nothing was saved" in body
    for value in data.values():
        if value and len(value) < 100:
            assert f'value="{value}"' in body
    allsafe_campaign.refresh_from_db()
    assert allsafe_campaign.low_stock_threshold == 10
    assert not StockThreshold.objects.exists()


def test_thresholds_form_with_a_broken_management_form_is_not_a_server_error(
    client, campaign_admin, allsafe_campaign
):
    client.force_login(campaign_admin)
    response = client.post(thresholds_url(), {"default_threshold": "5"})
    assert response.status_code == 200
    response = client.post(
        thresholds_url(),
        {"default_threshold": "5", "overrides-TOTAL_FORMS": "x", "overrides-INITIAL_FORMS": "0"},
    )
    assert response.status_code == 200
