"""Filters of the sales list (django-filter). Choices are limited to the person's campaigns."""

from __future__ import annotations

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from ..access.scoping import campaigns_for
from ..forms.fields import AmountRangeField
from ..models import AuditEvent, Sale
from ..models.ledger import OperationState
from ..models.sales import SaleKind


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
    amount = AmountRangeFilter(label=_("Amount from/to"))

    class Meta:
        model = Sale
        fields = ["campaign", "sold", "seller", "state", "kind", "amount"]


class AuditEventFilter(django_filters.FilterSet):
    campaign = django_filters.ModelChoiceFilter(queryset=request_campaigns, label=_("Campaign"))
    action = django_filters.CharFilter(lookup_expr="istartswith", label=_("Action starts with"))
    actor_name = django_filters.CharFilter(lookup_expr="iexact", label=_("Who"))
    since, until = created_between()

    class Meta:
        model = AuditEvent
        fields = ["campaign", "action", "actor_name", "since", "until"]
