"""The till's check answered as the page's content (static/js/desk.js, issue 17 item 2), in
Chromium: no page load per scan, from the desk and from a slip; without JavaScript the plain
form still works."""

from __future__ import annotations

import os

import pytest

from vouchers.access import roles
from vouchers.models import Campaign, ProviderOperation

from ..support.factories import PASSWORD, make_user
from .conftest import CHROMIUM_ARGS

pytestmark = [pytest.mark.chromium, pytest.mark.django_db(transaction=True)]

FIRST = "FRST2345EFGH6789"
SECOND = "SCND2345EFGH6789"


@pytest.fixture
def shop(db):
    campaign = Campaign.objects.create(
        name="Till shop",
        slug="till-shop",
        provider="lina",
        base_url="https://lina.example.test/extern/tokenapi",
    )
    make_user(roles.CASHIER, campaign, username="till")
    return campaign


def login(page, live_server):
    page.goto(live_server.url + "/login/")
    page.fill("input[name=username]", "till")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")


def test_a_scan_is_answered_without_loading_a_page(page, live_server, fake_provider, shop):
    from playwright.sync_api import expect

    fake_provider.add_token(FIRST, "30.00")
    fake_provider.add_token(SECOND, "10.00", full_value_only=True)
    page.add_init_script("window.__printed = 0; window.print = function () { window.__printed += 1; };")
    csp_errors = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    fetched = []
    page.on(
        "request",
        lambda r: fetched.append(r.headers.get("x-desk-fragment")) if r.method == "POST" else None,
    )
    login(page, live_server)
    expect(page.locator("h1")).to_contain_text("Till shop")

    page.evaluate("window.__samePage = true")
    page.locator("#id_code").fill(FIRST)
    page.keyboard.press("Enter")
    expect(page.locator("#token-card")).to_contain_text("FRST-2345-EFGH-6789")
    assert page.evaluate("window.__samePage") is True  # the content changed, the page stayed
    assert fetched[-1] == "1"
    assert page.url.endswith("/desk/till-shop/")
    expect(page.locator("nav.mainnav")).to_be_visible()  # the page around it is still there
    amount = page.locator("input[name=amount]")
    expect(amount).to_be_focused()  # the card's Redeem step has the focus, as on a loaded page
    page.keyboard.type("12")
    page.keyboard.press("Enter")  # the redeem is a plain POST and its redirect: a page load
    expect(page.locator("#new-balance")).to_have_text("18.00 €")
    assert page.evaluate("window.__samePage") is None

    # The next customer's scan, from the slip: the card replaces the slip without a page load,
    # and "+" prints nothing any more (the slip is gone).
    page.evaluate("window.__samePage = true")
    page.keyboard.type(SECOND)
    page.keyboard.press("Enter")
    expect(page.locator("#token-card")).to_contain_text("SCND-2345-EFGH-6789")
    assert page.evaluate("window.__samePage") is True
    assert page.url.endswith("/desk/till-shop/")
    expect(page.locator("#slip")).to_have_count(0)
    expect(page.locator("#redeem-button")).to_be_focused()  # full value only: Enter redeems
    page.keyboard.press("+")
    assert page.evaluate("window.__printed") == 0
    page.keyboard.press("Enter")
    expect(page.locator("#new-balance")).to_have_text("0.00 €")

    # A refused code is shown in place too, next to the field.
    page.evaluate("window.__samePage = true")
    page.keyboard.type("ABC")
    page.keyboard.press("Enter")
    expect(page.locator("#check-form")).to_contain_text("this one has 3")
    assert page.evaluate("window.__samePage") is True
    assert fake_provider.calls["redeem"] == 2
    assert ProviderOperation.objects.filter(kind="redeem", state="succeeded").count() == 2
    assert not csp_errors


def test_without_javascript_the_plain_form_checks_and_redeems(live_server, fake_provider, shop):
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from django.db import connections
    from playwright.sync_api import expect, sync_playwright

    fake_provider.add_token(FIRST, "30.00")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(locale="en-GB", java_script_enabled=False)
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            fetched = []
            page.on(
                "request",
                lambda r: fetched.append(r.headers.get("x-desk-fragment")) if r.method == "POST" else None,
            )
            login(page, live_server)
            page.locator("#id_code").fill(FIRST)
            page.locator("#check-button").click()
            expect(page.locator("#token-card")).to_contain_text("FRST-2345-EFGH-6789")
            page.locator("input[name=amount]").fill("30.00")
            page.locator("#redeem-button").click()
            expect(page.locator("#new-balance")).to_have_text("0.00 €")
            assert set(fetched) == {None}  # every POST was the plain form's
        finally:
            context.close()
            browser.close()
            connections.close_all()
