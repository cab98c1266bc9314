"""Bulk sales tell the truth (issue 19, item 3): a re-uploaded file's rows already sold are
flagged and need a confirmation per batch; the example file is the campaign's own; the poll
carries the rows' results; preview and result show count and total with the currency."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from tests.project.test_i18n import assert_german
from tests.support.sales import csv_file
from vouchers.models import AuditEvent, BulkSale, Sale, SaleTemplate
from vouchers.output.bulk_csv import parse_bulk_csv
from vouchers.services import bulk_sales as bulk_svc

pytestmark = pytest.mark.django_db

UPLOAD_URL = reverse("vouchers:bulksale-upload", kwargs={"campaign": "lina-shop"})
ROWS = ("25,Standard,,,,a@example.com", "30,Standard,1,Anna,Ben,", "40,Standard,,,,c@example.com")


@pytest.fixture(autouse=True)
def _no_queue(monkeypatch):
    monkeypatch.setattr("vouchers.tasks.sales.bulk_sale_run_task.apply_async", lambda args, **options: None)


def upload(client, data: bytes) -> BulkSale:
    response = client.post(UPLOAD_URL, {"file": SimpleUploadedFile("b.csv", data, content_type="text/csv")})
    assert response.status_code == 302, response.content.decode()
    return BulkSale.objects.order_by("-pk").first()


def detail(client, bulk) -> str:
    return client.get(reverse("vouchers:bulksale-detail", args=[bulk.pk])).content.decode()


def start(client, bulk, **data):
    return client.post(reverse("vouchers:bulksale-start", args=[bulk.pk]), data, follow=True)


def sell_all(client, bulk) -> None:
    start(client, bulk)
    bulk_svc.bulk_sale_run(bulk_sale_id=bulk.pk)


@pytest.fixture
def sold_file(client, marketing, lina_template, fake_provider):
    client.force_login(marketing)
    first = upload(client, csv_file(*ROWS))
    sell_all(client, first)
    assert Sale.objects.count() == 3
    return first


def test_a_reupload_is_flagged_and_needs_a_confirmation(client, sold_file, fake_provider):
    again = upload(client, csv_file(*ROWS[:2], "99,Standard,,,,new@example.com"))
    page = detail(client, again)
    assert "data-bulk-repeats" in page and "2 rows of this file were already sold" in page
    assert page.count("data-row-repeat") == 2
    assert f'href="{reverse("vouchers:bulksale-detail", args=[sold_file.pk])}"' in page
    assert 'name="repeats_confirmed" value="2" required' in page

    refused = start(client, again)
    assert "2 rows of this file were sold from an earlier file in the last 7 days" in refused.content.decode()
    again.refresh_from_db()
    assert again.state == "draft" and fake_provider.calls["purchase"] == 3

    start(client, again, repeats_confirmed="2")
    again.refresh_from_db()
    assert again.state == "queued" and again.repeats_confirmed == 2
    event = AuditEvent.objects.filter(action="bulk_sale.started", object_id=str(again.pk)).get()
    assert event.data == {"repeats_confirmed": 2}


def test_more_repeats_than_confirmed_refuse_the_start(client, sold_file):
    again = upload(client, csv_file(*ROWS))
    assert "3 rows of this file" in detail(client, again)
    for confirmed in ("2", "²", "-3", "9" * 40):  # a page shown before a third row was sold; junk
        assert start(client, again, repeats_confirmed=confirmed).status_code == 200
    again.refresh_from_db()
    assert again.state == "draft"


def test_failed_old_and_other_campaign_rows_are_not_repeats(
    client, marketing, lina_template, fake_provider, settings
):
    from vouchers.providers.errors import RedeemRefused

    client.force_login(marketing)
    first = upload(client, csv_file(ROWS[0]))
    fake_provider.fail_next("purchase", RedeemRefused("nein"))
    sell_all(client, first)
    assert Sale.objects.get().state == "failed"
    second = upload(client, csv_file(ROWS[0]))
    assert "data-bulk-repeats" not in detail(client, second)  # nothing was sold
    sell_all(client, second)
    Sale.objects.filter(operation__state="succeeded").update(created_at=timezone.now() - timedelta(days=8))
    third = upload(client, csv_file(ROWS[0]))
    assert "data-bulk-repeats" not in detail(client, third)  # outside the 7-day window
    settings.SALES_BULK_REPEAT_WINDOW_DAYS = 10
    assert "data-bulk-repeats" in detail(client, third)


def test_preview_and_result_show_count_and_total_with_currency(
    client, marketing, lina_template, fake_provider
):
    client.force_login(marketing)
    bulk = upload(client, csv_file(*ROWS, "abc,Standard,,,,"))
    page = detail(client, bulk)
    assert "3 gift tokens, 95.00 €" in page
    sell_all(client, bulk)
    page = detail(client, bulk)
    assert "<span data-amount-succeeded>95.00 €</span> sold" in page
    progress = client.get(reverse("vouchers:bulksale-progress", args=[bulk.pk])).json()
    assert progress["valid_amount"] == "95.00" and progress["succeeded_amount_text"] == "95.00 €"


def test_the_poll_carries_each_rows_result(client, marketing, lina_template, fake_provider):
    client.force_login(marketing)
    bulk = upload(client, csv_file(*ROWS))
    url = reverse("vouchers:bulksale-progress", args=[bulk.pk])
    assert client.get(url).json()["rows"] == []  # nothing reached yet
    sell_all(client, bulk)
    rows = client.get(url, {"from": "3"}).json()["rows"]
    assert [row["line"] for row in rows] == [3, 4] and all(row["final"] for row in rows)
    assert 'class="badge badge-ok" data-row-state="succeeded"' in rows[0]["html"]
    for odd in ("x' or 1=1", "²", "9" * 40):
        assert client.get(url, {"from": odd}).status_code == 200


def test_failed_row_is_never_shown_in_a_success_style(client, marketing, lina_template, fake_provider):
    from vouchers.providers.errors import RedeemRefused

    client.force_login(marketing)
    bulk = upload(client, csv_file(ROWS[0]))
    fake_provider.fail_next("purchase", RedeemRefused("nein"))
    sell_all(client, bulk)
    row = client.get(reverse("vouchers:bulksale-progress", args=[bulk.pk])).json()["rows"][0]
    assert 'class="badge badge-bad" data-row-state="failed"' in row["html"] and "badge-ok" not in row["html"]


def test_example_file_is_built_from_the_campaigns_templates(
    client, marketing, lina_template, lina_campaign, other_campaign
):
    SaleTemplate.objects.create(
        campaign=lina_campaign, name="Birthday", template_hash="b", allowed_layouts=[3]
    )
    SaleTemplate.objects.create(campaign=lina_campaign, name="Retired", template_hash="r", is_active=False)
    SaleTemplate.objects.create(campaign=other_campaign, name="Elsewhere", template_hash="e")
    client.force_login(marketing)
    page = client.get(UPLOAD_URL).content.decode()
    url = reverse("vouchers:bulksale-template") + "?campaign=lina-shop"
    assert f'href="{url}"' in page
    response = client.get(url)
    assert "lina-shop" in response["Content-Disposition"]
    lines = parse_bulk_csv(response.content)
    assert {line.cells["template"] for line in lines} == {"Birthday", "Standard"}
    assert ("Birthday", "3") in {(line.cells["template"], line.cells["layout"]) for line in lines}
    bulk = upload(client, response.content)  # the example uploads without a single error
    assert not bulk.rows.filter(valid=False).exists()
    assert client.get(reverse("vouchers:bulksale-template"), {"campaign": "other-shop"}).status_code == 404


def test_bulk_pages_in_german(client, sold_file):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "de"
    again = upload(client, csv_file(*ROWS))
    assert_german(
        client.get(reverse("vouchers:bulksale-detail", args=[again.pk])),
        must_contain=(
            "3 Geschenkgutscheine, 95,00 €",
            "bereits verkauft",
            "Ja, die 3 wiederholten Zeilen erneut verkaufen",
        ),
    )
    refused = start(client, again)
    assert_german(refused, must_contain=("aus einer früheren Datei verkauft",))
    assert_german(
        client.get(reverse("vouchers:bulksale-detail", args=[sold_file.pk])),
        must_contain=("95,00 € verkauft",),
    )
    assert Decimal("95.00") == sum(s.amount for s in Sale.objects.all())
