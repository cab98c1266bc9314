"""A list's CSV export is its django-tables2 table: same columns, same filters and order, streamed."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from vouchers.output import csv_export
from vouchers.output.tables import AuditEventTable, SaleTable
from vouchers.services import sales as svc
from vouchers.services.audit import audit_record

pytestmark = pytest.mark.django_db


def _rows(response) -> list[list[str]]:
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def _sell(campaign, user, template, amount: str, **kwargs):
    return svc.gift_token_sell(
        campaign=campaign,
        user=user,
        request_token=svc.new_request_token(),
        amount=Decimal(amount),
        template=template,
        **kwargs,
    )


def test_the_sales_file_has_the_tables_columns_the_hidden_ones_too(
    client, marketing, fake_provider, lina_template
):
    _sell(
        lina_template.campaign,
        marketing,
        lina_template,
        "25",
        layout=1,
        from_name="Anna",
        for_name="Ben",
        email="ben@example.com",
    )
    client.force_login(marketing)
    header, row = _rows(client.get(reverse("vouchers:sale-export")))
    assert header == [str(c.header) for c in SaleTable(()).columns.iterall()]
    assert dict(zip(header, row, strict=True)) | {"Sold at": "?"} == {
        "Sold at": "?",
        "Campaign": lina_template.campaign.name,
        "Kind": "gift token (LINA)",
        "Seller": marketing.get_username(),
        "Template / vendor": lina_template.name,
        "Layout": "1",
        "From": "Anna",
        "For": "Ben",
        "Amount": "25.00",
        "Code": row[9],
        "E-mail": "ben@example.com",  # issue 19: the file has every column the page shows
        "State": "succeeded",
        "Currency": "EUR",  # rand and euro rows in one file are told apart (issue 19)
    }
    assert row[9].startswith("••••")
    page = client.get(reverse("vouchers:sale-list")).content.decode()
    assert "Anna" not in page  # the hidden columns are the file's only


def test_the_sales_file_keeps_the_lists_filters_and_order(client, marketing, fake_provider, lina_template):
    for amount in ("10", "30", "20"):
        _sell(lina_template.campaign, marketing, lina_template, amount)
    client.force_login(marketing)
    url = reverse("vouchers:sale-export")
    amounts = [r[8] for r in _rows(client.get(url, {"amount_min": "15", "sort": "amount"}))[1:]]
    assert amounts == ["20.00", "30.00"]


def test_rows_stream_in_chunks_from_the_database(
    client, marketing, fake_provider, lina_template, monkeypatch
):
    for _ in range(5):
        _sell(lina_template.campaign, marketing, lina_template, "10")
    monkeypatch.setattr(csv_export, "CHUNK_SIZE", 2)
    client.force_login(marketing)
    response = client.get(reverse("vouchers:sale-export"))
    with CaptureQueriesContext(connection) as queries:
        rows = _rows(response)  # the queries run while the response is read, not before
    assert len(rows) == 6 and len(queries) >= 1


def test_the_audit_file_is_the_audit_table(client, campaign_admin, lina_campaign):
    audit_record(
        actor=campaign_admin, action="campaign.changed", summary="Shop renamed", campaign=lina_campaign
    )
    client.force_login(campaign_admin)
    header, row = _rows(client.get(reverse("vouchers:audit-list"), {"export": "csv"}))
    assert header == [str(c.header) for c in AuditEventTable(()).columns.iterall()]
    assert row[2:] == ["campaign.changed", lina_campaign.name, "Shop renamed"]
    assert "T" in row[0]  # ISO 8601, exact to the second and with the offset


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_rows_stream_from_a_plain_cursor_not_a_holdable_one(
    client, marketing, fake_provider, lina_template
):
    # In autocommit Django declares an iterator's cursor WITH HOLD, which PostgreSQL fills with
    # the whole result before the first row comes back (seconds at a million rows): the export
    # reads its rows inside a transaction, where the cursor is a plain streaming one.
    for amount in ("10", "20", "30"):
        _sell(lina_template.campaign, marketing, lina_template, amount)
    client.force_login(marketing)
    with CaptureQueriesContext(connection) as queries:
        rows = _rows(client.get(reverse("vouchers:sale-export")))
    assert len(rows) == 4
    declared = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DECLARE")]
    assert len(declared) == 1 and "WITH HOLD" not in declared[0]
    assert connection.get_autocommit()  # the transaction ended with the file
