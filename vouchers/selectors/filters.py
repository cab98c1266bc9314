"""Filters of the sales list (django-filter). Choices are limited to the person's campaigns.

A voucher code is never a filter value (a query string ends up in access logs and browser
history): the sales list's code search is a POST that redirects here with ``code_of``, the
reference of a sale with that code, and the filter compares the operations' keyed digests.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

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


def _sellers(request):
    campaigns = request_campaigns(request).values("pk")
    return get_user_model().objects.filter(sales__campaign__in=campaigns).distinct().order_by("username")


def created_between() -> tuple[django_filters.DateFilter, django_filters.DateFilter]:
    """The "From" / "Until" day filters on ``created_at`` of the audit and ledger lists."""
    return tuple(
        django_filters.DateFilter(
            field_name="created_at",
            lookup_expr=lookup,
            label=label,
            widget=forms.DateInput(attrs={"type": "date"}),
        )
        for lookup, label in (("date__gte", _("From")), ("date__lte", _("Until")))
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
    action = django_filters.CharFilter(lookup_expr="istartswith", label=_("Action starts with"))
    actor_name = django_filters.CharFilter(lookup_expr="iexact", label=_("Who"))
    since, until = created_between()

    class Meta:
        model = AuditEvent
        fields = ["campaign", "action", "actor_name", "since", "until"]
