"""The list tables (django-tables2): sales and audit. Codes are masked here; the detail page shows more.

Each table is the one column definition of its list: the page renders it and the CSV export
streams the same columns (``output.csv_export.table_csv_response``). ``visible=False`` columns
are in the file only; ``exclude_from_export`` columns on the page only; ``value_<column>``
gives a cell's plain value for the file where ``render_<column>`` formats it for the page.
"""

from __future__ import annotations

import django_tables2 as tables
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..models import AuditEvent, Sale
from ..values.formatting import format_money

MAX_PER_PAGE = 200


def state_badge(state: str, label) -> str:
    return format_html('<span class="badge {}">{}</span>', STATE_BADGES.get(state, "badge-muted"), label)


def to_the_second(value) -> str:
    """A date and time with seconds, the date part in the reader's language."""
    local = timezone.localtime(value)
    return f"{formats.date_format(local, 'SHORT_DATE_FORMAT')} {formats.time_format(local, 'H:i:s')}"


#: The table template that says when the count stopped at COUNT_CAP.
CAPPED_TABLE_TEMPLATE = "vouchers/includes/capped_table.html"

#: A list counts its rows up to this many; beyond, it says "more than 10,000" (capped_table.html).
COUNT_CAP = 10_000


def _queryset_of(object_list):
    """The queryset under a django-tables2 ``BoundRows`` (or the object list itself), else None."""
    data = getattr(object_list, "data", object_list)
    data = getattr(data, "data", data)
    return data if isinstance(data, QuerySet) else None


class BoundedPaginator(Paginator):
    """Pages of 1 to MAX_PER_PAGE rows, whatever ``?per_page=`` asks, and a capped count.

    django-tables2 takes ``per_page`` from the query string; a negative or enormous value made
    a paginator with no pages and the page a server error (found by tests/forms/test_fuzz.py).

    The count reads at most COUNT_CAP + 1 rows (``SELECT COUNT(*) FROM (… LIMIT 10001)``): an
    exact ``COUNT(*)`` of a million-row ledger is a full scan on every page view, and nobody
    pages past the 200th page; they narrow the filters. ``capped`` says the true number is
    larger; the pages then end at COUNT_CAP rows (an offset the indexes still walk quickly).
    """

    count_cap = COUNT_CAP

    def __init__(self, object_list, per_page, *args, **kwargs):
        super().__init__(object_list, min(max(int(per_page), 1), MAX_PER_PAGE), *args, **kwargs)
        self.capped = False

    @cached_property
    def count(self) -> int:
        queryset = _queryset_of(self.object_list)
        if queryset is None:
            return super().count
        found = queryset.order_by()[: self.count_cap + 1].count()
        self.capped = found > self.count_cap
        return min(found, self.count_cap)


STATE_BADGES = {
    "succeeded": "badge-ok",
    "failed": "badge-bad",
    "needs_review": "badge-warn",
    "unknown": "badge-warn",
    "pending": "badge-muted",
    "code_missing": "badge-warn",  # a sale recorded as gone through without its code
}


def then_newest(*fields: str) -> tuple[str, ...]:
    """A column's sort, ties broken by sale time and id: without a unique last key the database
    returns equal rows in any order, so the page and its CSV (two queries) could disagree."""
    return (*fields, "created_at", "pk")


class SaleTable(tables.Table):
    created_at = tables.DateTimeColumn(
        verbose_name=_("Sold at"),
        short=True,
        linkify=("vouchers:sale-detail", [tables.A("pk")]),
        order_by=("created_at", "pk"),
    )
    campaign = tables.Column(
        verbose_name=_("Campaign"), accessor="campaign__name", order_by=then_newest("campaign__name")
    )
    kind = tables.Column(verbose_name=_("Kind"), order_by=then_newest("kind"))
    seller = tables.Column(
        verbose_name=_("Seller"),
        accessor="seller__username",
        default="—",
        order_by=then_newest("seller__username"),
    )
    product = tables.Column(
        verbose_name=_("Template / vendor"),
        accessor="template_name",
        empty_values=(),
        order_by=then_newest("template_name", "vendor"),
    )
    # In the file only: what a gift token was printed with.
    layout = tables.Column(verbose_name=_("Layout"), visible=False, order_by=then_newest("layout"))
    from_name = tables.Column(verbose_name=_("From"), visible=False, order_by=then_newest("from_name"))
    for_name = tables.Column(verbose_name=_("For"), visible=False, order_by=then_newest("for_name"))
    amount = tables.Column(
        verbose_name=_("Amount"),
        attrs={"td": {"class": "num money"}, "th": {"class": "num"}},
        order_by=then_newest("amount"),
    )
    code_masked = tables.Column(
        verbose_name=_("Code"),
        default="—",
        attrs={"td": {"class": "code"}},
        order_by=then_newest("code_masked"),
    )
    email = tables.Column(verbose_name=_("E-mail"), default="—", order_by=then_newest("email"))
    state = tables.Column(
        verbose_name=_("State"), accessor="operation__state", order_by=then_newest("operation__state")
    )
    # In the file only (the page's amount carries its sign): rand and euro rows in one file.
    currency = tables.Column(verbose_name=_("Currency"), accessor="campaign__provider", visible=False)

    class Meta:
        model = Sale
        fields = (
            "created_at",
            "campaign",
            "kind",
            "seller",
            "product",
            "amount",
            "code_masked",
            "email",
            "state",
        )
        sequence = (
            "created_at",
            "campaign",
            "kind",
            "seller",
            "product",
            "layout",
            "from_name",
            "for_name",
            "amount",
            "code_masked",
            "email",
            "state",
            # Last, so the columns before keep their places in files people already read.
            "currency",
        )
        order_by = ("-created_at",)
        attrs = {"class": "table"}
        empty_text = _("No sales match.")
        template_name = CAPPED_TABLE_TEMPLATE

    def render_amount(self, record):
        return format_money(record.amount, record.campaign.currency)

    def render_product(self, record):
        return record.template_name or record.vendor or "—"

    def render_state(self, record):
        return format_html(
            '<span class="badge {}">{}</span>',
            STATE_BADGES.get(record.shown_state, "badge-muted"),
            record.shown_state_label,
        )

    # --- the CSV file's values (sortable text a spreadsheet reads) ---------------------------
    def value_created_at(self, value):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")

    def value_amount(self, record):
        return record.amount

    def value_currency(self, record):
        return record.campaign.currency

    def value_product(self, record):
        return record.template_name or record.vendor

    def value_email(self, record):
        return record.email

    def value_state(self, record):
        return record.shown_state_label


class AuditEventTable(tables.Table):
    created_at = tables.DateTimeColumn(verbose_name=_("When"))
    actor_name = tables.Column(verbose_name=_("Who"))
    action = tables.Column(verbose_name=_("Action"))
    campaign = tables.Column(verbose_name=_("Campaign"), accessor="campaign__name", default="—")
    summary = tables.Column(verbose_name=_("Summary"), orderable=False)

    class Meta:
        model = AuditEvent
        fields = ["created_at", "actor_name", "action", "campaign", "summary"]
        attrs = {"class": "table"}
        order_by = "-created_at"
        template_name = CAPPED_TABLE_TEMPLATE

    def render_created_at(self, value):
        return to_the_second(value)  # the audit trail keeps the seconds

    def value_created_at(self, value):
        return value.isoformat()  # the file is for machines too: exact and time-zone aware

    def render_summary(self, record):
        return record.display_summary

    def value_summary(self, record):
        return record.display_summary
