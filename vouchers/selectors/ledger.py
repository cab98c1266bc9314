"""The ledger for the people who answer "what happened to this voucher": reads and filters.

Scoped to the viewer's campaigns like every list. A voucher code is never a filter value: a
full code in a query string would end up in access logs and browser history. "The same code as
operation #n" compares the operations' keyed digests instead, so the list finds every operation
on a code without anyone passing the code itself.
"""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from ..access.scoping import scope, users_for
from ..models import ProviderOperation
from ..models.ledger import OperationKind, OperationState
from ..values.codes import code_digest, normalize_code
from .filters import created_between, request_campaigns


def ledger_for(user) -> QuerySet[ProviderOperation]:
    """Provider operations of ``user``'s campaigns (all for a superuser), newest first."""
    return scope(ProviderOperation.objects.select_related("campaign", "user"), user).order_by(
        "-created_at", "-pk"
    )


def operation_with_code(user, code: str) -> ProviderOperation | None:
    """The newest operation of ``user``'s campaigns on ``code``, found by its keyed digest (the
    code is stored only encrypted or masked, so it cannot be compared in a query)."""
    code = normalize_code(code)
    if not code:
        return None
    return ledger_for(user).filter(code_digest=code_digest(code)).first()


def _people(request):
    return users_for(request.user if request else None).order_by("username")


class LedgerFilter(django_filters.FilterSet):
    campaign = django_filters.ModelChoiceFilter(label=_("Campaign"), queryset=request_campaigns)
    kind = django_filters.ChoiceFilter(label=_("Operation"), choices=OperationKind.choices)
    state = django_filters.ChoiceFilter(label=_("State"), choices=OperationState.choices)
    user = django_filters.ModelChoiceFilter(label=_("Who"), queryset=_people)
    since, until = created_between()
    reference = django_filters.NumberFilter(label=_("Reference"), field_name="pk", min_value=1)
    same_code_as = django_filters.NumberFilter(
        label=_("Same code as reference"), method="filter_same_code", min_value=1
    )

    class Meta:
        model = ProviderOperation
        fields = ["campaign", "kind", "state", "user", "since", "until", "reference", "same_code_as"]

    def filter_same_code(self, queryset, name, value):
        if value is None:
            return queryset
        digest = (
            ledger_for(self.request.user if self.request else None)
            .filter(pk=value)
            .exclude(code_digest="")
            .values_list("code_digest", flat=True)
            .first()
        )
        if digest is None:  # no such operation in the viewer's campaigns, or it has no code
            return queryset.filter(pk=value)
        return queryset.filter(code_digest=digest)
