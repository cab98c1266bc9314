"""Issue 19, items 4 and 7 in a real browser (Chromium via Playwright), in English and German:
an Allsafe item at 0 has one open alert, amounts carry the rand, days-to-empty appears after two
polls with a drop, the demo history fills the 7-day chart; stored texts (audit summaries, settle
notes, what staff were told) are rendered in the reader's language, the provider's words labelled;
and no failure wears the success style."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from tests.support.factories import PASSWORD
from vouchers.models import ProviderOperation, StockSnapshot
from vouchers.providers import errors
from vouchers.services.operations import reconcile_verdict
from vouchers.services.stock import stock_poll
from vouchers.services.stock_demo import stock_demo_history
from vouchers.staff_text import told_staff

pytestmark = [pytest.mark.chromium, pytest.mark.django_db(transaction=True)]

DETAIL = reverse("vouchers:stock-detail", kwargs={"campaign": "allsafe-vault"})
LANGUAGES = pytest.mark.parametrize("language", ["en", "de"])


def login(page, live_server, username: str, language: str) -> None:
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
    )
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    # Staff land on the home page, a cashier on the desk: wait until the login page is left.
    page.wait_for_url(lambda url: not url.endswith(reverse("login")))


def assert_no_success_style(scope) -> None:
    """Nothing in ``scope`` is dressed as a success (green alert or badge)."""
    assert scope.locator(".alert-ok, .badge-ok").count() == 0


OUT_OF_STOCK = {
    "en": {"message": "No Takealot R 100.00 vouchers are left.", "state": "out of stock"},
    "de": {"message": "Es sind keine Gutscheine Takealot R 100,00 mehr übrig.", "state": "ausverkauft"},
}


@LANGUAGES
def test_an_item_at_zero_shows_one_out_of_stock_alert(
    page, live_server, marketing, allsafe_campaign, fake_provider, language
):
    fake_provider.set_stock("Takealot", 100, 3)
    stock_poll(campaign_id=allsafe_campaign.pk)  # low
    fake_provider.set_stock("Takealot", 100, 0)
    stock_poll(campaign_id=allsafe_campaign.pk)  # out of stock supersedes low
    words = OUT_OF_STOCK[language]
    login(page, live_server, "marketing", language)

    page.goto(live_server.url + DETAIL)
    alerts = page.locator("section[aria-labelledby=alerts] .alert")
    assert alerts.count() == 1
    assert "alert-bad" in alerts.first.get_attribute("class").split()
    assert words["message"] in alerts.first.inner_text()
    state = page.locator("section[aria-labelledby=current] tbody tr td:nth-child(5) .badge")
    assert state.inner_text() == words["state"] and "badge-bad" in state.get_attribute("class")
    # The poll itself worked (provider health may be green); the stock is what failed.
    assert_no_success_style(page.locator("section[aria-labelledby=alerts]"))
    assert_no_success_style(page.locator("section[aria-labelledby=current]"))

    page.goto(live_server.url + reverse("vouchers:stock-dashboard"))
    alerts = page.locator("section[aria-labelledby=open-alerts] .alert")
    assert alerts.count() == 1 and "alert-bad" in alerts.first.get_attribute("class").split()
    assert words["message"] in alerts.first.inner_text()
    assert page.locator("table.table tbody tr td:nth-child(4)").inner_text() == "1"


@pytest.mark.parametrize(("language", "value"), [("en", "R 1,000.00"), ("de", "R 1.000,00")])
def test_rand_amounts_and_days_to_empty_after_two_polls_with_a_drop(
    page, live_server, marketing, allsafe_campaign, fake_provider, language, value
):
    fake_provider.set_stock("Takealot", 1000, 60)
    stock_poll(campaign_id=allsafe_campaign.pk)
    # The first poll was a day ago (polls seconds apart would give "less than a day").
    StockSnapshot.objects.filter(campaign=allsafe_campaign).update(
        taken_at=timezone.now() - timedelta(days=1)
    )
    login(page, live_server, "marketing", language)
    page.goto(live_server.url + DETAIL)
    cells = page.locator("section[aria-labelledby=current] tbody tr td")
    assert cells.nth(1).inner_text() == value
    assert cells.nth(5).inner_text() == "—"  # one poll: nothing to estimate from yet

    fake_provider.set_stock("Takealot", 1000, 50)  # 10 sold in a day: 50 left last five days
    stock_poll(campaign_id=allsafe_campaign.pk)
    assert StockSnapshot.objects.filter(campaign=allsafe_campaign).count() == 2
    page.reload()
    row = page.locator("section[aria-labelledby=current] tbody tr")
    assert row.count() == 1
    cells = row.locator("td")
    assert cells.nth(1).inner_text() == value
    assert cells.nth(2).inner_text() == "50"
    assert cells.nth(5).inner_text() == "5"
    assert "€" not in page.locator("main").inner_text()


@LANGUAGES
def test_the_demo_history_fills_the_seven_day_chart(page, live_server, marketing, allsafe_campaign, language):
    levels = {("Takealot", Decimal("100.00")): 40, ("Uber", Decimal("250.00")): 25}
    assert stock_demo_history(campaign=allsafe_campaign, levels=levels) > 0
    login(page, live_server, "marketing", language)
    page.goto(live_server.url + DETAIL)

    assert page.locator("section[aria-labelledby=history] .empty").count() == 0
    assert page.locator("svg.stock-chart polyline").count() == 2
    for point_list in page.locator("svg.stock-chart polyline").evaluate_all(
        "lines => lines.map(l => l.getAttribute('points'))"
    ):
        assert len(point_list.split()) > 7  # a week of polls, not one point
    assert page.locator(".stock-ranges [aria-current=true]").inner_text().startswith("7 ")
    estimates = page.locator("section[aria-labelledby=current] tbody tr td:nth-child(6)").all_inner_texts()
    assert len(estimates) == 2 and "—" not in estimates


AUDIT = {
    "en": "low stock alert opened for Allsafe vault: Only 3 Takealot R 100.00 vouchers are left",
    "de": "Warnung „niedriger Bestand“ für Allsafe vault geöffnet: Nur noch 3 Gutscheine Takealot R 100,00 übrig",
}


@LANGUAGES
def test_audit_summaries_are_shown_in_the_readers_language(
    page, live_server, campaign_admin, allsafe_campaign, fake_provider, language
):
    fake_provider.set_stock("Takealot", 100, 3)
    stock_poll(campaign_id=allsafe_campaign.pk)  # a background job: it has no language of its own
    login(page, live_server, "campaignadmin", language)
    page.goto(live_server.url + reverse("vouchers:audit-list"))

    text = page.locator("main").inner_text()
    assert AUDIT[language] in text
    other = AUDIT["de" if language == "en" else "en"]
    assert other not in text


SETTLED = {
    "en": "Balance dropped from 50.00 € to 37.50 € by the amount: redeemed.",
    "de": "Guthaben von 50,00 € um den Betrag auf 37,50 € gesunken: eingelöst.",
}


@LANGUAGES
def test_a_settle_note_is_shown_in_the_readers_language(page, live_server, cashier, lina_campaign, language):
    verdict = reconcile_verdict(
        operation=ProviderOperation(balance_before=Decimal("50.00"), amount=Decimal("12.50")),
        remaining=Decimal("37.50"),
        settled=True,
    )
    settled = ProviderOperation.objects.create(
        campaign=lina_campaign,
        user=cashier,
        kind="redeem",
        state="succeeded",
        amount=Decimal("12.50"),
        balance_before=Decimal("50.00"),
        balance_after=Decimal("37.50"),
        resolved_at=timezone.now(),
        resolution_note=verdict.note,
        resolution_message=verdict.message,
        request_token="settled-e2e",
    )
    login(page, live_server, "cashier", language)
    page.goto(live_server.url + reverse("vouchers:desk-operation", args=[settled.pk]))

    slip = page.locator("#slip").inner_text()
    assert SETTLED[language] in slip
    assert SETTLED["de" if language == "en" else "en"] not in slip


REFUSED = {
    "en": "The provider refused to redeem this token: “Gutschein ist gesperrt” (the provider's own words)",
    "de": "abgelehnt: „Gutschein ist gesperrt“ (Wortlaut des Anbieters)",
}


@LANGUAGES
def test_the_providers_words_are_labelled_and_a_failure_is_not_green(
    page, live_server, campaign_admin, lina_campaign, language
):
    refused = errors.RedeemRefused("Gutschein ist gesperrt")
    failed = ProviderOperation.objects.create(
        campaign=lina_campaign,
        kind="redeem",
        state="failed",
        amount=Decimal("5.00"),
        error_code=refused.code,
        error_message=refused.message,
        staff_text=told_staff(refused, money_moving=True),
        request_token="refused-e2e",
    )
    login(page, live_server, "campaignadmin", language)
    page.goto(live_server.url + reverse("vouchers:ledger-list"))

    row = page.locator(f"tr[data-operation='{failed.pk}']")
    assert REFUSED[language] in row.inner_text()
    assert "badge-ok" not in row.inner_html()
    assert "badge-bad" in row.locator(".badge").get_attribute("class")
    assert_no_success_style(page.locator("main"))
