"""Issue 19, item 7, the last free texts: a bulk row's result (batch page, its progress JSON and
the result CSV), a misconfigured-stock alert and its audit row, and a failed sale's audit row
are stored as codes with parameters and shown in the reader's language, whatever language they
were written in; the provider's own words are labelled as such."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from tests.views.test_stored_texts_language import AUDIT, BULK_FILE, browser, pages, sell
from vouchers import staff_text
from vouchers.models import AuditEvent, BulkSale, BulkSaleRow, StockAlert
from vouchers.models.stock import AlertKind, AlertState
from vouchers.providers import errors
from vouchers.services import bulk_sales as bulk_svc
from vouchers.services.stock import stock_poll

pytestmark = pytest.mark.django_db

REFUSAL = "Vorlage gesperrt"  # LINA answers in German: the provider's own words


def _run_batch(marketing, lina_template, fake_provider) -> BulkSale:
    """A batch of two rows: the provider refuses the first (its reason in its own words), sells
    the second. A refusal does not stop the job."""
    bulk = bulk_svc.bulk_sale_create(
        campaign=lina_template.campaign, user=marketing, filename="r.csv", data=BULK_FILE
    )
    BulkSale.objects.filter(pk=bulk.pk).update(state="queued")  # as bulk_sale_start leaves it
    fake_provider.fail_next("purchase", errors.Rejected(REFUSAL))
    with translation.override("de"):  # written in German: must not matter to the reader
        bulk_svc.bulk_sale_run(bulk_sale_id=bulk.pk)
    return bulk


def test_a_bulk_rows_result_follows_the_readers_language_on_the_page_and_in_its_progress(
    marketing, lina_template, fake_provider
):
    bulk = _run_batch(marketing, lina_template, fake_provider)
    refused, sold = BulkSaleRow.objects.filter(bulk_sale=bulk).order_by("line_number")
    assert sold.sale.operation.state == "succeeded" and refused.sale.operation.state == "failed"
    url = reverse("vouchers:bulksale-detail", args=[bulk.pk])
    progress = reverse("vouchers:bulksale-progress", args=[bulk.pk]) + "?from=1"

    english, german = pages(url, marketing)
    english_rows = " ".join(r["html"] for r in browser("en", marketing).get(progress).json()["rows"])
    german_rows = " ".join(r["html"] for r in browser("de", marketing).get(progress).json()["rows"])

    labelled_en = f"The provider refused the request: “{REFUSAL}” (the provider&#x27;s own words)"
    labelled_de = f"Der Anbieter hat die Anfrage abgelehnt: „{REFUSAL}“ (Wortlaut des Anbieters)"
    for page in (english, english_rows):
        assert labelled_en in page
    for page in (german, german_rows):
        assert labelled_de in page and "The provider refused" not in page
    # Stored as a code, the English text kept for the raw data.
    assert refused.message_stored["code"] == "provider.rejected"
    assert refused.message == f"The provider refused the request: “{REFUSAL}” (the provider's own words)"
    assert sold.message == "Sold." and sold.message_stored["msgid"] == "Sold."


def test_a_bulk_rows_result_in_the_result_csv_follows_the_readers_language(
    marketing, lina_template, fake_provider
):
    bulk = _run_batch(marketing, lina_template, fake_provider)
    url = reverse("vouchers:bulksale-result", args=[bulk.pk])

    english = browser("en", marketing).get(url).content.decode()
    german = browser("de", marketing).get(url).content.decode()

    assert "Sold." in english and "“Vorlage gesperrt” (the provider's own words)" in english
    assert "Verkauft." in german and "„Vorlage gesperrt“ (Wortlaut des Anbieters)" in german
    assert "Sold." not in german


def test_a_misconfigured_alert_follows_the_readers_language_whoever_polled(
    campaign_admin, marketing, allsafe_campaign, fake_provider
):
    with translation.override("de"):  # a German admin's refresh: the error is raised in German
        fake_provider.fail_next(
            "availability", errors.AuthFailed(staff_text.ALLSAFE_STATUS[401][0], status_code=401)
        )
        stock_poll(campaign_id=allsafe_campaign.pk)
    alert = StockAlert.objects.get(campaign=allsafe_campaign, kind=AlertKind.MISCONFIGURED)
    assert alert.state == AlertState.OPEN
    url = reverse("vouchers:stock-detail", kwargs={"campaign": allsafe_campaign.slug})

    english, german = pages(url, marketing)
    audit_en, audit_de = pages(AUDIT, campaign_admin)

    sentence_en = "Allsafe did not accept the campaign&#x27;s credentials (HTTP 401)."
    sentence_de = "Allsafe hat die Zugangsdaten der Kampagne nicht akzeptiert (HTTP 401)."
    assert sentence_en in english and sentence_de not in english
    assert sentence_de in german and sentence_en not in german
    # What to check too (the alert's list and the monitor's last error), in the reader's language.
    assert "Allsafe-Verwaltungsportal" in german and "management portal" not in german
    assert "Allsafe management portal" in english and "Verwaltungsportal" not in english
    assert f"credentials or vault problem alert opened for {allsafe_campaign.name}: {sentence_en}" in audit_en
    assert sentence_de in audit_de and "alert opened" not in audit_de
    # English in the text columns (CSV, admin, the audit search), whoever wrote it.
    assert alert.message == "Allsafe did not accept the campaign's credentials (HTTP 401)."
    assert alert.message_stored["msgid"] == alert.message
    event = AuditEvent.objects.get(action="stock.alert_opened")
    assert event.summary.endswith(": Allsafe did not accept the campaign's credentials (HTTP 401).")


def test_a_failed_sales_audit_row_says_why_in_the_readers_language_not_the_error_class(
    campaign_admin, marketing, lina_template, fake_provider
):
    fake_provider.fail_next("purchase", errors.AuthFailed())
    failed = sell(lina_template, marketing)
    fake_provider.fail_next("purchase", errors.Rejected(REFUSAL))
    refused = sell(lina_template, marketing)

    english, german = pages(AUDIT, campaign_admin)

    assert (
        f"gift token (LINA) #{failed.pk} failed: The provider did not accept this campaign&#x27;s "
        "credentials. Nothing was changed." in english
    )
    assert (
        f"Geschenkgutschein (LINA) #{failed.pk} fehlgeschlagen: Der Anbieter hat die Zugangsdaten "
        "dieser Kampagne nicht akzeptiert." in german
    )
    assert (
        f"#{refused.pk} failed: The provider refused the request: “{REFUSAL}” "
        "(the provider&#x27;s own words)" in english
    )
    assert f"#{refused.pk} fehlgeschlagen: Der Anbieter hat die Anfrage abgelehnt: „{REFUSAL}“" in german
    for page in (english, german):
        assert "AuthFailed" not in page and "Rejected" not in page
