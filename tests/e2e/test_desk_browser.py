"""A cashier at the till, in Chromium: scan, check, redeem part, redeem the rest, double-click,
and watch an unknown outcome resolve. The fake provider stands in for LINA (same process as
live_server, so the monkeypatched client factory applies to the server thread too).
"""

from __future__ import annotations

import re

import pytest

from vouchers.access import roles
from vouchers.models import ProviderOperation
from vouchers.providers import errors
from vouchers.tasks.desk import operation_reconcile_task

from ..support.factories import PASSWORD, make_user

pytestmark = [pytest.mark.chromium, pytest.mark.django_db(transaction=True)]


def _scan(page, code: str):
    field = page.locator("input[name=code]")
    assert field.evaluate("el => el === document.activeElement")  # autofocus: the scanner types here
    field.fill(code)
    field.press("Enter")  # scanners end with Enter
    page.wait_for_selector("#token-card")


def test_cashier_checks_and_redeems_at_the_till(page, live_server, fake_provider, settings):
    from playwright.sync_api import expect

    settings.DESK_UNKNOWN_REFRESH_SECONDS = 1
    from vouchers.models import Campaign

    campaign = Campaign.objects.create(
        name="Till shop",
        slug="till-shop",
        provider="lina",
        base_url="https://lina.example.test/extern/tokenapi",
    )
    make_user(roles.CASHIER, campaign, username="till")
    fake_provider.add_token("GIFT1234EFGH5678", "50.00")
    fake_provider.add_token("DBLC1234EFGH5678", "10.00")
    fake_provider.add_token("LOST1234EFGH5678", "40.00")

    # Log in and open the desk from the navigation.
    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", "till")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.get_by_role("link", name="Desk", exact=True).click()
    expect(page.locator("h1")).to_contain_text("Till shop")

    # Scan (typed with dashes and lower case), check, redeem part.
    _scan(page, "gift-1234 efgh-5678")
    card = page.locator("#token-card")
    expect(card).to_contain_text("GIFT-1234-EFGH-5678")
    expect(card).to_contain_text("50.00 €")
    expect(card).to_contain_text("partial redemption allowed")
    amount = page.locator("input[name=amount]")
    expect(amount).to_have_value("50.00")
    amount.fill("20,50")
    page.click("#redeem-button")
    expect(page.locator("#old-balance")).to_have_text("50.00 €")
    expect(page.locator("#new-balance")).to_have_text("29.50 €")
    expect(page.locator(".print-slip")).to_be_visible()

    # Redeem the rest: the amount is prefilled with what is left.
    page.click("#next-token")
    _scan(page, "GIFT1234EFGH5678")
    expect(page.locator("input[name=amount]")).to_have_value("29.50")
    page.click("#redeem-button")
    expect(page.locator("#new-balance")).to_have_text("0.00 €")
    assert fake_provider.calls["redeem"] == 2

    # A double click on Redeem: one provider call, one ledger row.
    page.click("#next-token")
    _scan(page, "DBLC1234EFGH5678")
    page.dblclick("#redeem-button")
    expect(page.locator("#outcome")).to_contain_text("Redeemed 10.00 €")
    assert fake_provider.calls["redeem"] == 3
    assert ProviderOperation.objects.filter(kind="redeem", code_masked="••••5678", amount=10).count() == 1

    # The answer gets lost and the immediate re-check fails: outcome unknown, no goods yet.
    page.click("#next-token")
    _scan(page, "LOST1234EFGH5678")
    page.locator("input[name=amount]").fill("15")
    fake_provider.lose_answer_next("redeem")
    fake_provider.fail_next("check", errors.ProviderUnavailable())
    page.click("#redeem-button")
    expect(page.locator("#outcome")).to_contain_text("Do not hand over goods yet")
    assert page.locator("body").get_attribute("data-refresh-seconds") == "1"
    unknown = ProviderOperation.objects.get(kind="redeem", state="unknown")

    # The scheduled reconcile runs (as beat would); the page refreshes itself into the result.
    operation_reconcile_task(unknown.pk)
    expect(page.locator("#new-balance")).to_have_text("25.00 €", timeout=10_000)
    assert re.search(r"Redeemed 15.00 €", page.locator("#outcome").inner_text())
    assert fake_provider.calls["redeem"] == 4  # never sent again

    # Today's list adds it all up.
    page.get_by_role("link", name="Today's redemptions").first.click()
    expect(page.locator("#total-redeemed")).to_have_text("75.00 €")
