"""Filters of the sales list (django-filter). Choices are limited to the person's campaigns."""

from __future__ import annotations

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from ..access.scoping import campaigns_for
from ..forms.fields import AmountRangeField
from ..models import AuditEvent, Sale
from ..models.campaigns import CURRENCY_CHOICES, providers_in
from ..models.ledger import OperationState
from ..models.sales import SaleKind


class AmountRangeFilter(django_filters.RangeFilter):
    """Amounts typed as the reader writes them (12,50 in German) or with a dot."""

    field_class = AmountRangeField


def _campaigns(request):
    return campaigns_for(request.user) if request else campaigns_for(None)


def _sellers(request):
    campaigns = campaigns_for(request.user) if request else campaigns_for(None)
    return (
        get_user_model()
        .objects.filter(sales__campaign__in=campaigns.values("pk"))
        .distinct()
        .order_by("username")
    )


class SaleFilter(django_filters.FilterSet):
    campaign = django_filters.ModelChoiceFilter(label=_("Campaign"), queryset=_campaigns)
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

    class Meta:
        model = Sale
        fields = ["campaign", "sold", "seller", "state", "kind", "currency", "amount"]

    def in_currency(self, queryset, name, value):
        return queryset.filter(campaign__provider__in=providers_in(value)) if value else queryset


def _user_campaigns(request):
    return campaigns_for(request.user) if request else AuditEvent.objects.none()


class AuditEventFilter(django_filters.FilterSet):
    campaign = django_filters.ModelChoiceFilter(queryset=_user_campaigns, label=_("Campaign"))
    action = django_filters.CharFilter(lookup_expr="istartswith", label=_("Action starts with"))
    actor_name = django_filters.CharFilter(lookup_expr="iexact", label=_("Who"))
    since = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__gte",
        label=_("From"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__lte",
        label=_("Until"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = AuditEvent
        fields = ["campaign", "action", "actor_name", "since", "until"]
