"""Campaign admin pages in a real browser (Chromium via Playwright) against live_server.

Test connection runs against the sandbox providers (real HTTP) on the values typed in the form:
a working value is reported in green and says it is not saved; a failure is red only, names the
failed step and what to check; nothing typed is ever saved by a test.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.urls import reverse

from tests.support.factories import PASSWORD
from tests.support.sandbox import sandbox_lina_shop
from vouchers.models import Membership

pytestmark = [pytest.mark.chromium, pytest.mark.django_db(transaction=True)]

UNREACHABLE = "http://127.0.0.1:9/extern/tokenapi"  # the discard port: nothing listens there


def login(page, live_server, username: str) -> None:
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(live_server.url + reverse("vouchers:home"))


def messages_of(page, level: str) -> list[str]:
    return page.locator(f"ul.messagelist li.{level}").all_inner_texts()


@pytest.fixture
def shop(sandbox, campaign_admin):
    campaign = sandbox_lina_shop(sandbox, code="ABCD2345EFGH6789", read_timeout=5)
    campaign.api_password = "a-wrong-saved-password"
    campaign.save()
    Membership.objects.create(user=campaign_admin, campaign=campaign)
    return campaign


def open_change_page(page, live_server, campaign) -> None:
    page.goto(live_server.url + reverse("admin:vouchers_campaign_change", args=[campaign.pk]))


def test_typed_password_is_tested_without_saving(page, live_server, shop, sandbox):
    login(page, live_server, "campaignadmin")
    open_change_page(page, live_server, shop)
    page.fill("input[name=new_password]", "demo-lina-password")
    page.click("button[name=test_connection]")
    page.wait_for_selector("ul.messagelist")
    [success] = messages_of(page, "success")
    assert "The connection works" in success and "not saved until you press Save" in success
    assert messages_of(page, "error") == []
    shop.refresh_from_db()
    assert shop.api_password == "a-wrong-saved-password"  # the test saved nothing

    page.fill("input[name=new_password]", "another-wrong-password")
    page.click("button[name=test_connection]")
    page.wait_for_selector("ul.messagelist li.error")
    errors = " ".join(messages_of(page, "error"))
    assert "LINA refused the login" in errors and "Failed step: LINA login" in errors
    assert messages_of(page, "success") == [] and messages_of(page, "info") == []
    assert sandbox.request_count("lina", "login") == 2  # one per test: at most one failed login


@pytest.mark.parametrize(
    ("locale", "unreachable", "check"),
    [("en-GB", "could not be reached", "The base URL"), ("de-DE", "nicht erreichbar", "Die Basis-URL")],
)
def test_unreachable_typed_url_is_red_and_points_at_the_base_url(
    page, live_server, shop, locale, unreachable, check
):
    page.context.add_cookies([{"name": "django_language", "value": locale[:2], "url": live_server.url}])
    login(page, live_server, "campaignadmin")
    open_change_page(page, live_server, shop)
    page.fill("input[name=base_url]", UNREACHABLE)
    page.fill("input[name=new_password]", "demo-lina-password")
    page.fill("input[name=new_shared_key]", "demo-lina-shared-key")
    page.click("button[name=test_connection]")
    page.wait_for_selector("ul.messagelist li.error")
    errors = " ".join(messages_of(page, "error"))
    assert unreachable in errors and check in errors and UNREACHABLE in errors
    assert messages_of(page, "success") == [] and messages_of(page, "info") == []
    assert page.input_value("input[name=base_url]") == UNREACHABLE  # the typed value stays
    shop.refresh_from_db()
    assert shop.base_url != UNREACHABLE


# --- The ledger (issue 19, item 5) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "ledger", "failed"), [("en", "Ledger", "failed"), ("de", "Journal", "fehlgeschlagen")]
)
def test_from_provider_health_to_the_ledger_and_its_csv(
    page, live_server, campaign_admin, lina_campaign, other_campaign, language, ledger, failed
):
    from vouchers.models import ProviderOperation
    from vouchers.values.codes import code_digest, mask_code

    code = "ABCD2345EFGH6789"
    for duration, state in ((40, "succeeded"), (900, "failed"), (300, "succeeded")):
        ProviderOperation.objects.create(
            campaign=lina_campaign,
            kind="check",
            state=state,
            duration_ms=duration,
            code_masked=mask_code(code),
            code_digest=code_digest(code),
            error_code="ProviderUnavailable" if state == "failed" else "",
        )
    ProviderOperation.objects.create(campaign=other_campaign, kind="check", state="failed", duration_ms=5)
    page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    login(page, live_server, "campaignadmin")
    page.goto(live_server.url + reverse("vouchers:provider-health"))
    page.click(f"a[data-ledger-campaign]:has-text('{lina_campaign.name}')")
    page.wait_for_selector(f"h1:has-text('{ledger}')")
    rows = page.locator("table.ledger tbody tr")
    assert rows.count() == 3  # this campaign only
    assert page.locator(f"table.ledger .badge-bad:has-text('{failed}')").count() == 1
    assert code not in page.content() and mask_code(code) in page.content()

    page.click("table.ledger th a[href*='duration_ms']")  # sort by duration, shortest first
    page.wait_for_url("**sort=duration_ms**")
    durations = page.locator("table.ledger tbody tr td:nth-child(9)").all_inner_texts()
    assert durations == ["40 ms", "300 ms", "900 ms"]

    with page.expect_download() as download:
        page.click("button[name=export]")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 4 and code not in text  # header and three rows, codes masked
    assert [row[8] for row in rows[1:]] == ["40", "300", "900"]  # the file keeps the page's sort


# --- People (issue 19, item 6) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "people", "added", "deactivated"),
    [
        ("en", "People", "can sign in now", "is deactivated"),
        ("de", "Personen", "kann sich jetzt anmelden", "ist deaktiviert"),
    ],
)
def test_campaign_admin_adds_a_cashier_resets_and_deactivates(
    page, live_server, campaign_admin, lina_campaign, other_campaign, language, people, added, deactivated
):
    from django.contrib.auth import get_user_model

    from tests.support.factories import role_group
    from vouchers.access import roles

    role_group(roles.CASHIER)  # the flush of a transactional test removed the migration's groups
    page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    login(page, live_server, "campaignadmin")
    page.click(f"nav >> text={people}")
    page.click("[data-person-create]")
    assert other_campaign.name not in page.content()
    page.fill("input[name=username]", "newtill")
    page.fill("input[name=first_name]", "Nina")
    page.select_option("select[name=role]", value="Cashier")
    page.check(f"label:has-text('{lina_campaign.name}') input")
    page.fill("input[name=password1]", "Till-Nr7-Frühling!")
    page.fill("input[name=password2]", "Till-Nr7-Frühling!")
    page.click("button.button-primary")
    page.wait_for_selector(f".message-success:has-text('{added}')")

    page.fill("input[name=password1]", "short")
    page.fill("input[name=password2]", "short")
    page.click("[data-password-form] button")
    page.wait_for_selector("[data-password-form] .errorlist")
    assert page.locator(".message-success").count() == 0  # a refused password is never green

    page.click("[data-active-form] button")
    page.wait_for_selector(f".message-success:has-text('{deactivated}')")
    assert not get_user_model().objects.get(username="newtill").is_active
