"""No bulk-sale file can tie up a worker (issue 15, item 2): hostile files get a clear error fast.

Each file fits in the upload limit (1 MiB). The old duplicate-column check was quadratic: a
50,000-column header took 74 s. Each case is timed through the upload page, where the answer is
a message on the form and nothing is stored.
"""

from __future__ import annotations

import time

import pytest

from tests.support.sales import csv_file, lina_template  # noqa: F401 (fixture)
from vouchers.models import AuditEvent, BulkSale, BulkSaleRow
from vouchers.output.bulk_csv import MAX_COLUMNS, BulkFileError, parse_bulk_csv

from .test_sales import upload

pytestmark = pytest.mark.django_db

LIMIT = 1024 * 1024
HOSTILE = {
    "wide header, 50,000 columns": (
        ("amount,template," + ",".join(f"c{i}" for i in range(50_000))).encode() + b"\n25,Standard\n",
        "at most 30",
    ),
    "wide header, 500,000 empty columns": (
        b"amount,template" + b"," * 500_000 + b"\n25,Standard\n",
        "at most 30",
    ),
    "wide header, 500,000 repeated columns": (
        b"amount,template" + b",amount" * 140_000 + b"\n",
        "at most 30",
    ),
    "wide data line": (csv_file("25,Standard" + ",x" * 400_000, header="amount,template"), "Line 2 has"),
    "one very long value": (csv_file("25," + "S" * 1_000_000, header="amount,template"), "longer than"),
    "one very long header name": (b"amount,template," + b"z" * 1_000_000 + b"\n", "longer than"),
    "many rows": (csv_file(*["25,Standard"] * 85_000, header="amount,template"), "at most 1000"),
    "many blank lines": (b"amount,template\n" + b",\n" * 500_000, "most of them empty"),
    "an unclosed quote": (b'amount,template\n25,"' + b"x" * 1_000_000, "longer than"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_file_is_refused_in_well_under_a_second(client, marketing, lina_template, name):  # noqa: F811
    data, message = HOSTILE[name]
    assert len(data) <= LIMIT, len(data)
    client.force_login(marketing)
    events = AuditEvent.objects.count()
    started = time.monotonic()
    response = upload(client, data)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert message in response.context["form"].errors["file"][0]
    assert elapsed < 1.0, f"{name}: {elapsed:.2f} s"
    assert not BulkSale.objects.exists() and not BulkSaleRow.objects.exists()
    assert AuditEvent.objects.count() == events


def test_a_header_with_a_few_empty_spreadsheet_columns_is_still_fine():
    lines = parse_bulk_csv(csv_file("25,Standard" + "," * 10, header="amount,template" + "," * 10))
    assert lines[0].cells == {"amount": "25", "template": "Standard"}


def test_the_column_cap_names_the_columns():
    with pytest.raises(BulkFileError) as refused:
        parse_bulk_csv(("amount,template" + ",x" * MAX_COLUMNS + "\n25,Standard\n").encode())
    assert "amount, template, layout, from, for, email" in refused.value.message
    assert len(refused.value.message) < 300


def test_duplicate_columns_are_still_named():
    with pytest.raises(BulkFileError) as refused:
        parse_bulk_csv(b"amount,template,amount,Amount\n25,Standard,1,2\n")
    assert "columns given twice: amount" in refused.value.message


def test_reading_and_checking_share_one_time_budget(client, marketing, lina_template, settings):  # noqa: F811
    """A file that is valid but takes longer than the budget is refused, and nothing is stored."""
    settings.SALES_BULK_PARSE_SECONDS = 0.0
    client.force_login(marketing)
    response = upload(client, csv_file(*["25,Standard,,,,"] * 500))
    assert "took too long to read" in response.context["form"].errors["file"][0]
    assert not BulkSale.objects.exists()
    settings.SALES_BULK_PARSE_SECONDS = 5.0
    started = time.monotonic()
    response = upload(client, csv_file(*["25,Standard,,,,"] * 1000))
    assert response.status_code == 302 and BulkSale.objects.get().rows.count() == 1000
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("layouts", ["9" * 5000, "²", "1, " + "7" * 7, ",".join(["1"] * 100_000)])
def test_template_layouts_that_int_cannot_read_are_a_message(client, campaign_admin, lina_campaign, layouts):
    """Found in the review of user-sized loops: 5,000 digits or a superscript were a server error."""
    from django.urls import reverse

    from vouchers.models import SaleTemplate

    client.force_login(campaign_admin)
    response = client.post(
        reverse("admin:vouchers_saletemplate_add"),
        {"campaign": lina_campaign.pk, "name": "X", "template_hash": "h", "layouts_text": layouts},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["layouts_text"]
    assert not SaleTemplate.objects.exists()
