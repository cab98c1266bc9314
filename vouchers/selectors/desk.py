"""Read queries of the cashier desk and the review of unresolved operations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from django.db.models import QuerySet
from django.http import Http404

from ..access.scoping import campaigns_for, scope
from ..models import Campaign, DeskPreference, ProviderOperation
from ..models.campaigns import Provider
from ..models.ledger import OperationKind, OperationState
from ..services.tokens import LINA_TIMEZONE, lina_today

UNRESOLVED_STATES = (OperationState.UNKNOWN, OperationState.NEEDS_REVIEW)


def desk_campaigns(user) -> QuerySet[Campaign]:
    """The LINA campaigns the user works on: the only ones the desk offers."""
    return campaigns_for(user, provider=Provider.LINA)


def desk_auto_print(user) -> bool:
    """Whether the user's slips print by themselves after a redemption (off unless set)."""
    return DeskPreference.objects.filter(user=user, auto_print=True).exists()


def last_desk_campaign(user) -> Campaign | None:
    """The desk campaign the user last checked or redeemed a token on (a till's usual shop)."""
    last = (
        ProviderOperation.objects.filter(
            user=user,
            kind__in=(OperationKind.CHECK, OperationKind.REDEEM),
            campaign__in=desk_campaigns(user).values("pk"),
        )
        .select_related("campaign")
        .order_by("-created_at", "-id")
        .first()
    )
    return last.campaign if last is not None else None


@dataclass(frozen=True)
class TodaysRedemptions:
    operations: list[ProviderOperation]
    total_redeemed: Decimal
    succeeded: int
    failed: int
    open: int


def redemptions_today(*, user) -> TodaysRedemptions:
    """The user's own redeems since midnight in Germany, newest first, with totals."""
    start = datetime.combine(lina_today(), time.min, tzinfo=LINA_TIMEZONE)
    operations = list(
        scope(ProviderOperation.objects.all(), user)
        .filter(user=user, kind=OperationKind.REDEEM, created_at__gte=start)
        .select_related("campaign")
        .order_by("-created_at", "-id")
    )
    succeeded = [op for op in operations if op.state == OperationState.SUCCEEDED]
    return TodaysRedemptions(
        operations=operations,
        total_redeemed=sum((op.amount or Decimal("0") for op in succeeded), Decimal("0.00")),
        succeeded=len(succeeded),
        failed=sum(op.state == OperationState.FAILED for op in operations),
        open=sum(op.is_open for op in operations),
    )


def desk_operation(*, user, pk: int) -> ProviderOperation:
    """One redeem for its result page: the cashier's own, or any in scope for people who resolve."""
    qs = scope(ProviderOperation.objects.filter(kind=OperationKind.REDEEM), user).select_related("campaign")
    if not user.has_perm("vouchers.resolve_operations"):
        qs = qs.filter(user=user)
    try:
        return qs.get(pk=pk)
    except ProviderOperation.DoesNotExist:
        raise Http404("No such operation.") from None


def operations_unresolved(*, user) -> QuerySet[ProviderOperation]:
    """Open money-moving operations that need settling, in the user's campaigns, oldest first."""
    return (
        scope(ProviderOperation.objects.filter(state__in=UNRESOLVED_STATES), user)
        .select_related("campaign", "user")
        .order_by("created_at", "id")
    )


def operation_unresolved(*, user, pk: int) -> ProviderOperation:
    try:
        return operations_unresolved(user=user).get(pk=pk)
    except ProviderOperation.DoesNotExist:
        raise Http404("No such unresolved operation.") from None
