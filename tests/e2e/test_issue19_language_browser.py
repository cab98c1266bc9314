"""Issue 19 in a real browser (Chromium via Playwright), the items still missing a German (or
English and German) run: a test connection on a typed wrong password (item 1), settling a lost
allocate with the voucher's details (item 2), the campaign's own template file and the re-upload
warning (item 3), a stale-stock alert and a bulk batch's note and row results (item 7). Each
test signs in with the language cookie the language switcher sets and shows no success style for
a failure."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from tests.e2e.test_admin_browser import messages_of, open_change_page, shop  # noqa: F401
from tests.support.factories import PASSWORD
from tests.support.sales import csv_file
from vouchers.models import BulkSale, Sale, SaleTemplate, StockMonitor
from vouchers.providers import errors
from vouchers.services import bulk_sales as bulk_svc
from vouchers.services import sales as svc
from vouchers.services.stock import stock_poll

pytestmark = [pytest.mark.chromium, pytest.mark.django_db(transaction=True)]


def login(page, live_server, username: str, language: str) -> None:
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
    )
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda url: not url.endswith(reverse("login")))


def assert_no_success_style(scope) -> None:
    assert scope.locator(".alert-ok, .badge-ok, ul.messagelist li.success").count() == 0


# --- Item 1: test connection on what was typed, in German ----------------------------------------


def test_a_typed_wrong_password_fails_red_in_german_and_saves_nothing(page, live_server, shop, sandbox):  # noqa: F811
    login(page, live_server, "campaignadmin", "de")
    open_change_page(page, live_server, shop)
    page.fill("input[name=new_password]", "another-wrong-password")
    page.click("button[name=test_connection]")
    page.wait_for_selector("ul.messagelist li.error")

    failure = " ".join(messages_of(page, "error"))
    assert "LINA hat die Anmeldung abgelehnt." in failure
    assert "Fehlgeschlagener Schritt: LINA-Anmeldung" in failure
    assert "refused" not in failure and "Failed step" not in failure
    assert messages_of(page, "success") == [] and messages_of(page, "info") == []
    assert page.locator("html").get_attribute("lang") == "de"
    shop.refresh_from_db()
    assert shop.api_password == "a-wrong-saved-password"  # the typed value was not saved
    assert sandbox.request_count("lina", "login") == 1  # at most one failed login


# --- Item 2: a lost allocate is settled with the voucher's details --------------------------------

ALLOCATE = {
    "en": {
        "settle": "Settle it with the evidence",
        "sold": "It went through: record the voucher",
        "lookup": "Look the voucher up in the Allsafe portal by the reference above.",
        "missing": "Enter the voucher's PIN or code as the Allsafe portal shows it.",
        "continue": "Continue",
        "done": "Voucher allocated",
    },
    "de": {
        "settle": "Mit Nachweis klären",
        "sold": "Er wurde ausgeführt: Gutschein erfassen",
        "lookup": "Suchen Sie den Gutschein im Allsafe-Portal über die Referenz oben.",
        "missing": "Geben Sie die PIN oder den Code des Gutscheins so ein, wie ihn das Allsafe-Portal zeigt.",
        "continue": "Weiter",
        "done": "Gutschein zugeteilt",
    },
}


@pytest.mark.parametrize("language", ["en", "de"])
def test_settle_a_lost_allocate_with_the_vouchers_details(
    page, live_server, campaign_admin, marketing, allsafe_campaign, fake_provider, language
):
    fake_provider.set_stock("Takealot", 100, 3)
    fake_provider.lose_answer_next("allocate")
    sale = svc.digital_voucher_allocate(
        campaign=allsafe_campaign,
        user=marketing,
        request_token=svc.new_request_token(),
        vendor="Takealot",
        value=Decimal("100"),
    )
    words = ALLOCATE[language]
    login(page, live_server, "campaignadmin", language)
    page.goto(live_server.url + reverse("vouchers:sale-detail", args=[sale.pk]))
    assert_no_success_style(page)  # not sold until settled
    page.click(f"text={words['settle']}")

    form = page.locator("[data-resolve-form]")
    assert words["lookup"] in form.inner_text()
    assert sale.operation.request_token in page.locator("dl.facts").inner_text()  # to look it up
    assert form.locator("input[name=code]").count() == 0  # no LINA code for an allocate
    page.check(f"text={words['sold']}")
    page.fill("textarea[name=reason]", "Allsafe portal, 10:02")
    page.click(f"button:has-text('{words['continue']}')")
    page.wait_for_selector(".errorlist")
    assert words["missing"] in page.locator("[data-resolve-form]").inner_text()
    assert Sale.objects.get(pk=sale.pk).operation.state == "needs_review"  # nothing recorded

    page.check(f"text={words['sold']}")
    page.fill("input[name=pin]", "PIN000000042")
    page.fill("input[name=serial]", "S000042")
    page.fill("input[name=expiry]", "2027-12-31")
    page.fill("textarea[name=reason]", "Allsafe portal, 10:02")
    page.click(f"button:has-text('{words['continue']}')")
    page.wait_for_selector(f".alert-ok:has-text('{words['done']}')")
    settled = Sale.objects.select_related("operation").get(pk=sale.pk)
    assert settled.operation.state == "succeeded" and settled.voucher_fields["serial"] == "S000042"
    assert fake_provider.calls["allocate"] == 1  # settled by hand, never sent again


# --- Item 3: the campaign's own template file, and the re-upload warning, in German ---------------


def test_the_template_file_names_the_campaigns_templates_and_a_reupload_is_flagged_in_german(
    page, live_server, marketing, lina_template, fake_provider, tmp_path
):
    SaleTemplate.objects.create(campaign=lina_template.campaign, name="Frühling", template_hash="tpl-fr")
    login(page, live_server, "marketing", "de")
    page.goto(live_server.url + reverse("vouchers:bulksale-upload", kwargs={"campaign": "lina-shop"}))
    with page.expect_download() as download:
        page.click("text=Vorlagendatei herunterladen")
    assert download.value.suggested_filename == "bulk-sale-template-lina-shop.csv"
    template_file = Path(download.value.path()).read_bytes()
    # UTF-8 with a byte-order mark, so spreadsheet programs read the umlauts right.
    assert template_file.decode("utf-8-sig").startswith("amount,template,layout,from,for,email")
    assert "Frühling".encode() in template_file and b"Standard" in template_file  # the campaign's own

    # The downloaded file, sold once (yesterday's batch), is uploaded again.
    earlier = bulk_svc.bulk_sale_create(
        campaign=lina_template.campaign, user=marketing, filename="yesterday.csv", data=template_file
    )
    assert earlier.rows.filter(valid=True).count() == earlier.rows.count() > 0  # the example is valid
    BulkSale.objects.filter(pk=earlier.pk).update(state="queued")  # as bulk_sale_start leaves it
    bulk_svc.bulk_sale_run(bulk_sale_id=earlier.pk)
    page.set_input_files("input[name=file]", str(download.value.path()))
    page.click("button.button-primary")

    warning = page.locator("[data-bulk-repeats]")
    warning.wait_for()
    rows = earlier.rows.count()
    assert "bereits aus einer früheren Datei dieser Kampagne verkauft" in warning.inner_text()
    assert "already sold" not in warning.inner_text()
    assert page.locator("[data-row-repeat]").count() == rows
    assert "bereits verkauft" in page.locator("[data-row-repeat]").first.inner_text()
    confirm = page.locator("label:has([data-confirm-repeats])").inner_text()
    assert confirm.strip() == f"Ja, die {rows} wiederholten Zeilen erneut verkaufen"
    page.click("[data-bulk-start]")  # refused by the browser: the confirmation is required
    assert BulkSale.objects.order_by("-pk").first().state == "draft"


# --- Item 7: a stale-stock alert and a bulk batch's note and row results, in German ---------------


def test_a_stale_stock_alert_is_shown_in_german(
    page, live_server, marketing, allsafe_campaign, fake_provider
):
    fake_provider.set_stock("Takealot", 100, 50)
    stock_poll(campaign_id=allsafe_campaign.pk)
    since = timezone.now() - timedelta(hours=3)
    StockMonitor.objects.filter(campaign=allsafe_campaign).update(last_success_at=since)
    fake_provider.fail_next("availability", errors.ProviderUnavailable())
    stock_poll(campaign_id=allsafe_campaign.pk)
    login(page, live_server, "marketing", "de")

    page.goto(live_server.url + reverse("vouchers:stock-detail", kwargs={"campaign": allsafe_campaign.slug}))
    alert = page.locator("section[aria-labelledby=alerts] .alert")
    assert alert.count() == 1
    text = alert.first.inner_text()
    assert f"Seit {timezone.localtime(since):%d.%m.%Y %H:%M} war keine Abfrage erfolgreich" in text
    assert "Letzter Fehler: Der Anbieter war nicht erreichbar." in text
    assert "No poll" not in text and "Last error" not in text
    assert_no_success_style(page.locator("section[aria-labelledby=alerts]"))


def test_a_bulk_batchs_note_and_row_results_are_shown_in_german(
    page, live_server, marketing, lina_template, fake_provider, settings
):
    # One row at a time, so the queued failures meet lines 2 and 3 in order (with rows in
    # parallel, which line takes which failure is up to the threads; this test is about language).
    settings.SALES_BULK_CONCURRENCY = 1
    data = csv_file("25,Standard,,,,", "30,Standard,,,,", "35,Standard,,,,")
    bulk = bulk_svc.bulk_sale_create(
        campaign=lina_template.campaign, user=marketing, filename="b.csv", data=data
    )
    BulkSale.objects.filter(pk=bulk.pk).update(state="queued")  # as bulk_sale_start leaves it
    fake_provider.fail_next("purchase", errors.Rejected("Vorlage gesperrt"))  # LINA's own words
    fake_provider.fail_next("purchase", errors.AuthFailed())  # stops the job before line 4
    bulk_svc.bulk_sale_run(bulk_sale_id=bulk.pk)  # the job writes in English
    login(page, live_server, "marketing", "de")

    page.goto(live_server.url + reverse("vouchers:bulksale-detail", args=[bulk.pk]))
    note = page.locator("[data-progress-note]").inner_text()
    assert note.startswith("Angehalten bei Zeile 3:") and "Beheben Sie das" in note
    assert "Stopped at line" not in note
    cells = page.locator("[data-row-result]")
    refused, stopped, waiting = (cells.nth(i).inner_text() for i in range(3))
    assert "Der Anbieter hat die Anfrage abgelehnt: „Vorlage gesperrt“ (Wortlaut des Anbieters)" in refused
    assert "Der Anbieter hat die Zugangsdaten dieser Kampagne nicht akzeptiert." in stopped
    assert "wartet" in waiting
    for text in (refused, stopped):
        assert "The provider" not in text
    assert page.locator("[data-row-state=failed]").count() == 2
    assert_no_success_style(page.locator("[data-row-result]"))
