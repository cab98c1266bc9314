"""Filters of the sales list (django-filter). Choices are limited to the person's campaigns.

A voucher code is never a filter value (a query string ends up in access logs and browser
history): the sales list's code search is a POST that redirects here with ``code_of``, the
reference of a sale with that code, and the filter compares the operations' keyed digests.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters.constants import EMPTY_VALUES

from ..access.scoping import campaigns_for
from ..forms.fields import AmountRangeField
from ..models import AuditEvent, Sale
from ..models.campaigns import CURRENCY_CHOICES, providers_in
from ..models.ledger import OperationState
from ..models.sales import SaleKind
from .sales import sale_code_digest


class AmountRangeFilter(django_filters.RangeFilter):
    """Amounts typed as the reader writes them (12,50 in German) or with a dot."""

    field_class = AmountRangeField


def request_campaigns(request):
    """The choices of a campaign filter: the viewer's campaigns."""
    return campaigns_for(request.user if request else None)


# The distinct sellers of a set of campaigns by a loose index scan of sale_campaign_seller: per
# campaign, each step asks the index for the next seller id above the last one, so the cost is
# (campaigns x sellers) index probes, not a pass over every sale (~300 ms at 100,000 sales with
# a DISTINCT or a per-person EXISTS, which the planner answers with a scan of the whole table).
# A former member who sold there is found too: the sales, not the memberships, are asked.
_SELLERS_SQL = """
WITH RECURSIVE step(campaign_id, seller_id) AS (
    SELECT c.id, (SELECT min(s.seller_id) FROM {sale} s WHERE s.campaign_id = c.id)
    FROM unnest(%s::bigint[]) AS c(id)
  UNION ALL
    SELECT step.campaign_id,
           (SELECT min(s.seller_id) FROM {sale} s
            WHERE s.campaign_id = step.campaign_id AND s.seller_id > step.seller_id)
    FROM step WHERE step.seller_id IS NOT NULL
)
SELECT DISTINCT seller_id FROM step WHERE seller_id IS NOT NULL
"""


def seller_ids(campaign_ids: list[int]) -> list[int]:
    """The ids of everyone who sold in any of ``campaign_ids`` (current members or not)."""
    if not campaign_ids:
        return []
    if connection.vendor != "postgresql":
        # Other backends (a developer's SQLite) have no arrays: the plain DISTINCT is correct there.
        return list(
            Sale.objects.filter(campaign__in=campaign_ids, seller__isnull=False)
            .values_list("seller", flat=True)
            .distinct()
        )
    sql = _SELLERS_SQL.format(sale=connection.ops.quote_name(Sale._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(campaign_ids)])
        return [row[0] for row in cursor.fetchall()]


def _sellers(request):
    # The choices are built on each view of the sales list: the few seller ids first (a loose
    # index scan), then those people by primary key.
    campaigns = list(request_campaigns(request).values_list("pk", flat=True))
    return get_user_model().objects.filter(pk__in=seller_ids(campaigns)).order_by("username")


def day_start(day: date) -> datetime:
    """Midnight at the start of ``day`` in the current time zone (what ``__date`` compares in)."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


class DayFilter(django_filters.DateFilter):
    """A day typed in a list's form, compared as a range of the indexed timestamp.

    ``created_at__date__gte`` makes PostgreSQL convert every row's timestamp to a local date
    (``created_at AT TIME ZONE … ::date``), which no index can answer: a million-row ledger is
    scanned whole. ``created_at >= midnight`` (From) or ``< the next midnight`` (Until, the day
    included) selects the same rows and walks the created_at index.
    """

    def __init__(self, *args, until: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.until = until

    def filter(self, qs, value):
        if value in EMPTY_VALUES:
            return qs
        # The first and last representable days have no midnight on the other side of UTC:
        # no bound at all is what they mean anyway.
        if self.until:
            if value >= date.max - timedelta(days=1):
                return qs
            return qs.filter(**{f"{self.field_name}__lt": day_start(value + timedelta(days=1))})
        if value <= date.min + timedelta(days=1):
            return qs
        return qs.filter(**{f"{self.field_name}__gte": day_start(value)})


def created_between() -> tuple[DayFilter, DayFilter]:
    """The "From" / "Until" day filters on ``created_at`` of the audit and ledger lists."""
    return tuple(
        DayFilter(
            field_name="created_at",
            until=until,
            label=label,
            widget=forms.DateInput(attrs={"type": "date"}),
        )
        for until, label in ((False, _("From")), (True, _("Until")))
    )


class SaleFilter(django_filters.FilterSet):
    campaign = django_filters.ModelChoiceFilter(label=_("Campaign"), queryset=request_campaigns)
    sold = django_filters.DateFromToRangeFilter(
        label=_("Sold between"),
        field_name="created_at",
        widget=django_filters.widgets.DateRangeWidget(attrs={"type": "date"}),
    )
    seller = django_filters.ModelChoiceFilter(label=_("Seller"), queryset=_sellers)
    state = django_filters.ChoiceFilter(
        label=_("State"), field_name="operation__state", choices=OperationState.choices
    )
    kind = django_filters.ChoiceFilter(label=_("Kind"), choices=SaleKind.choices)
    # Rand and euro amounts are different money: the currency narrows the list before the range.
    currency = django_filters.ChoiceFilter(
        label=_("Currency"), choices=CURRENCY_CHOICES, method="in_currency"
    )
    amount = AmountRangeFilter(label=_("Amount from/to"))
    recipient = django_filters.CharFilter(
        label=_("Recipient (name or e-mail)"), method="filter_recipient", max_length=254
    )
    code_of = django_filters.NumberFilter(
        method="filter_code_of", min_value=1, widget=forms.HiddenInput, label=_("Same code as sale")
    )

    class Meta:
        model = Sale
        fields = ["campaign", "sold", "seller", "state", "kind", "currency", "amount", "recipient", "code_of"]

    def filter_recipient(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(Q(for_name__icontains=value) | Q(email__icontains=value))

    def filter_code_of(self, queryset, name, value):
        if value is None:
            return queryset
        digest = sale_code_digest(self.request.user if self.request else None, int(value))
        if not digest:  # not a sale of the viewer's campaigns, or it has no code: only itself
            return queryset.filter(pk=value)
        return queryset.filter(operation__code_digest=digest)

    def in_currency(self, queryset, name, value):
        return queryset.filter(campaign__provider__in=providers_in(value)) if value else queryset


class AuditEventFilter(django_filters.FilterSet):
    campaign = django_filters.ModelChoiceFilter(queryset=request_campaigns, label=_("Campaign"))
    # Actions are lower-case dotted names ("token.redeem"): the typed text is lower-cased and
    # compared with LIKE 'x%', which the action column's varchar_pattern_ops index answers;
    # ``istartswith`` (UPPER(action) LIKE UPPER('x%')) scanned every event.
    action = django_filters.CharFilter(method="filter_action", label=_("Action starts with"), max_length=64)
    # iexact is UPPER(actor_name) = UPPER(%s): the audit_actor_upper index is on that expression.
    actor_name = django_filters.CharFilter(lookup_expr="iexact", label=_("Who"), max_length=150)
    since, until = created_between()

    class Meta:
        model = AuditEvent
        fields = ["campaign", "action", "actor_name", "since", "until"]

    def filter_action(self, queryset, name, value):
        return queryset.filter(action__startswith=value.strip().lower()) if value else queryset
