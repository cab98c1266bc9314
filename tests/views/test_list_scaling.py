"""Lists that stay flat at a million rows (issue 17 item 4): capped counts, sargable filters,
streamed CSV without the encrypted columns, admin changelists that never count every row."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.support.factories import UserFactory
from vouchers.models import AuditEvent, ProviderOperation, Sale
from vouchers.output.csv_export import csv_bytes
from vouchers.output.tables import BoundedPaginator, SaleTable
from vouchers.selectors.audit import audit_actions, audit_search
from vouchers.selectors.filters import AuditEventFilter
from vouchers.selectors.ledger import LedgerFilter
from vouchers.services import sales as sales_svc
from vouchers.services.audit import audit_record

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")


def _events(campaign, count, action="token.check", actor_name="anna"):
    actor = get_user_model().objects.filter(username=actor_name).first() or UserFactory(username=actor_name)
    for n in range(count):
        audit_record(actor=actor, action=action, summary=f"event {n}", campaign=campaign)


def _set_created_at(pk: int, moment: datetime) -> None:
    """Audit events are append-only through the ORM; the test moves one in time with SQL."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE vouchers_auditevent SET created_at = %s WHERE id = %s", [moment, pk])


def _counts(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


# --- capped counts ----------------------------------------------------------------------------
def test_paginator_counts_up_to_the_cap_only(lina_campaign, monkeypatch):
    monkeypatch.setattr(BoundedPaginator, "count_cap", 3)
    _events(lina_campaign, 5)
    with CaptureQueriesContext(connection) as queries:
        paginator = BoundedPaginator(AuditEvent.objects.all(), 2)
        assert (paginator.count, paginator.capped, paginator.num_pages) == (3, True, 2)
    (count_sql,) = _counts(queries)
    assert "LIMIT 4" in count_sql  # counts at most cap + 1 rows, never the whole table

    exact = BoundedPaginator(AuditEvent.objects.filter(summary="event 1"), 2)
    assert (exact.count, exact.capped) == (1, False)


def test_audit_list_counts_once_and_says_more_than(client, campaign_admin, lina_campaign, monkeypatch):
    monkeypatch.setattr(BoundedPaginator, "count_cap", 3)
    _events(lina_campaign, 5)
    client.force_login(campaign_admin)
    with CaptureQueriesContext(connection) as queries:
        body = client.get(reverse("vouchers:audit-list")).content.decode()
    # One capped count (the ListView no longer paginates the same queryset a second time).
    counts = _counts(queries)
    assert len(counts) == 1 and "LIMIT 4" in counts[0]
    assert "data-count-capped" in body and "More than 3 rows match" in body
    monkeypatch.setattr(BoundedPaginator, "count_cap", 10)
    assert "data-count-capped" not in client.get(reverse("vouchers:audit-list")).content.decode()


def test_ledger_and_sales_lists_count_once(client, campaign_admin, marketing, lina_campaign):
    _events(lina_campaign, 2)
    client.force_login(campaign_admin)
    for url in (reverse("vouchers:ledger-list"), reverse("vouchers:sale-list")):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        assert all("LIMIT" in sql for sql in _counts(queries)), url
        assert len(_counts(queries)) <= 1, url


def test_admin_changelists_never_count_every_row(client, superuser, lina_campaign, monkeypatch):
    monkeypatch.setattr(BoundedPaginator, "count_cap", 3)
    _events(lina_campaign, 5, action="membership.added")
    _events(lina_campaign, 1, action="token.redeem")
    client.force_login(superuser)
    for url in ("/admin/vouchers/auditevent/", "/admin/vouchers/provideroperation/"):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        sqls = [q["sql"].upper() for q in queries.captured_queries]
        assert all("LIMIT" in sql for sql in sqls if "COUNT(" in sql), url
        assert not any("DISTINCT" in sql and "CREATED_AT" in sql for sql in sqls), url  # no date drill-down
    body = client.get("/admin/vouchers/auditevent/").content.decode()
    assert "more than 3 audit events" in body
    # The "By action" filter lists the actions, found without reading every event.
    assert "?action=membership.added" in body and "?action=token.redeem" in body
    found = client.get("/admin/vouchers/auditevent/", {"q": "TOKEN."}).content.decode()
    assert "1 audit event" in found


def test_audit_actions_are_the_distinct_actions_in_order(lina_campaign):
    for action in ("b.two", "a.one", "b.two", "c.three", "a.one"):
        audit_record(actor=None, action=action, summary="x", campaign=lina_campaign)
    assert audit_actions() == ["a.one", "b.two", "c.three"]


# --- sargable filters -------------------------------------------------------------------------
def _sql(qs) -> str:
    return str(qs.query).upper()


def _at(y, m, d, hh, mm) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=BERLIN)


def test_day_filters_are_ranges_of_the_timestamp_same_rows_as_dates(settings, lina_campaign):
    settings.TIME_ZONE = "Europe/Berlin"
    _events(lina_campaign, 4)
    moments = [_at(2026, 1, 4, 23, 59), _at(2026, 1, 5, 0, 0), _at(2026, 1, 5, 23, 59), _at(2026, 1, 6, 0, 0)]
    for event, moment in zip(AuditEvent.objects.order_by("pk"), moments, strict=True):
        _set_created_at(event.pk, moment)
    data = {"since": "2026-01-05", "until": "2026-01-05"}
    qs = AuditEventFilter(data, queryset=AuditEvent.objects.all()).qs
    sql = _sql(qs)
    assert "AT TIME ZONE" not in sql and "::DATE" not in sql and "DJANGO_DATETIME_CAST_DATE" not in sql
    # The same rows as the __date lookups it replaces (the current time zone's days).
    by_date = AuditEvent.objects.filter(
        created_at__date__gte="2026-01-05", created_at__date__lte="2026-01-05"
    )
    assert set(qs.values_list("pk", flat=True)) == set(by_date.values_list("pk", flat=True))
    assert sorted(qs.values_list("created_at", flat=True)) == moments[1:3]
    ledger = LedgerFilter(data, queryset=ProviderOperation.objects.all()).qs
    assert "AT TIME ZONE" not in _sql(ledger) and "::DATE" not in _sql(ledger)


def test_day_filters_at_the_ends_of_the_calendar_are_no_error(client, campaign_admin):
    client.force_login(campaign_admin)
    for value in ("0001-01-01", "9999-12-31"):
        for name in ("since", "until"):
            assert client.get(reverse("vouchers:audit-list"), {name: value}).status_code == 200
            assert client.get(reverse("vouchers:ledger-list"), {name: value}).status_code == 200


def test_action_filter_is_a_prefix_match_without_upper(lina_campaign):
    _events(lina_campaign, 1, action="token.redeem")
    _events(lina_campaign, 1, action="sale.emailed")
    qs = AuditEventFilter({"action": " Token"}, queryset=AuditEvent.objects.all()).qs
    assert "UPPER" not in _sql(qs) and "LIKE" in _sql(qs)
    assert list(qs.values_list("action", flat=True)) == ["token.redeem"]
    searched = audit_search(AuditEvent.objects.all(), "ANNA")  # the Who matches in any case
    assert searched.count() == 2


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"action": "token"}, "vouchers_auditevent_action"),  # the _like (varchar_pattern_ops) index
        ({"actor_name": "Anna"}, "audit_actor_upper"),
        ({"since": "2026-01-05"}, "created_at"),
    ],
)
def test_postgres_answers_the_audit_filters_from_an_index(lina_campaign, filters, index):
    _events(lina_campaign, 3)
    qs = AuditEventFilter(filters, queryset=AuditEvent.objects.order_by()).qs
    with connection.cursor() as cursor:
        # A three-row table is cheapest to scan whole; forbid that to see whether an index *can*
        # answer the filter (a non-sargable condition leaves only the sequential scan).
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = qs.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan and index in plan, plan


# --- streamed CSV -----------------------------------------------------------------------------
def test_sales_export_streams_the_table_without_the_encrypted_columns(
    client, marketing, fake_provider, lina_template
):
    for n in range(3):
        sales_svc.gift_token_sell(
            campaign=lina_template.campaign,
            user=marketing,
            request_token=sales_svc.new_request_token(),
            amount=Decimal("25"),
            template=lina_template,
            layout=1,
            from_name=f"=Customer {n}",
        )
    client.force_login(marketing)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("vouchers:sale-export"))
        streamed = b"".join(response.streaming_content)
    assert response.streaming
    sql = " ".join(q["sql"] for q in queries.captured_queries if "vouchers_sale" in q["sql"])
    assert "qrcode_png_ciphertext" not in sql and "full_code_ciphertext" not in sql
    # The same bytes as the table rendered whole the old way (django-tables2's as_values()).
    table = SaleTable(Sale.objects.with_related().order_by("-created_at"))
    header, *rows = table.as_values()
    assert streamed == csv_bytes(header, rows)
    assert streamed.count(b"'=Customer") == 3


def test_audit_and_ledger_exports_stream(client, campaign_admin, lina_campaign):
    _events(lina_campaign, 3)
    client.force_login(campaign_admin)
    for url in (reverse("vouchers:audit-list"), reverse("vouchers:ledger-list")):
        response = client.get(url, {"export": "csv"})
        assert response.streaming and response["Content-Type"].startswith("text/csv")
        assert b"".join(response.streaming_content).startswith("\ufeff".encode())
