"""Read queries of the cashier desk and the review of unresolved operations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from ..access.scoping import campaigns_for, scope
from ..models import Campaign, DeskPreference, ProviderOperation
from ..models.campaigns import Provider
from ..models.ledger import OperationKind, OperationState
from ..values.codes import code_digest, format_code
from ..values.parsing import parse_code

UNRESOLVED_STATES = (OperationState.UNKNOWN, OperationState.NEEDS_REVIEW)
#: A check older than this cannot be redeemed from: the cashier checks again.
CHECK_MAX_AGE_SECONDS = 30 * 60
#: Tokens are valid through the end of their valid-until day in Germany (providers.md).
LINA_TIMEZONE = ZoneInfo("Europe/Berlin")


def lina_today(now: datetime | None = None) -> date:
    return timezone.localtime(now or timezone.now(), LINA_TIMEZONE).date()


@dataclass(frozen=True)
class TokenCard:
    """What the desk shows about one checked token. ``code`` is the full code (desk only)."""

    operation: ProviderOperation
    code: str
    display_code: str
    valid: bool
    original_value: Decimal | None
    remaining_value: Decimal | None
    valid_until: date | None
    full_value_only: bool
    expired: bool
    message: str = ""

    @property
    def redeemable(self) -> bool:
        return self.valid and not self.expired and bool(self.remaining_value)


def token_card_from_check(*, check: ProviderOperation, code: str) -> TokenCard:
    """Rebuild the card of an earlier check (to show the redeem form again with its errors)."""
    data = check.response_data.get("card", {})
    valid_until = date.fromisoformat(data["valid_until"]) if data.get("valid_until") else None
    return TokenCard(
        operation=check,
        code=code,
        display_code=format_code(code),
        valid=bool(data.get("valid")),
        original_value=Decimal(data["original_value"]) if data.get("original_value") else None,
        remaining_value=Decimal(data["remaining_value"]) if data.get("remaining_value") else None,
        valid_until=valid_until,
        full_value_only=bool(data.get("full_value_only")),
        expired=valid_until is not None and lina_today() > valid_until,
        message=data.get("message", ""),
    )


def desk_check_for(*, campaign: Campaign, user, check_operation_id, code: str) -> TokenCard | None:
    """The user's own recent successful check of ``code`` in ``campaign``, as a card (None: there
    is none, or it is too old: the cashier checks again).

    The redeem form carries the check's id and the code; the numbers come from the ledger, so a
    tampered form cannot raise the remaining value, and the code must match the check's digest.
    """
    try:
        code = parse_code(code)
        check_id = int(check_operation_id)
    except (ValidationError, TypeError, ValueError):
        return None
    check = ProviderOperation.objects.filter(
        pk=check_id,
        campaign=campaign,
        user=user,
        kind=OperationKind.CHECK,
        state=OperationState.SUCCEEDED,
        code_digest=code_digest(code),
    ).first()
    if check is None or (timezone.now() - check.created_at).total_seconds() > CHECK_MAX_AGE_SECONDS:
        return None
    return token_card_from_check(check=check, code=code)


@dataclass(frozen=True)
class RedeemReads:
    """What a redeem form needs read before anything else, read in one statement."""

    #: The card of the form's check, as :func:`desk_check_for` gives it (None: check again).
    card: TokenCard | None
    #: The operation the form's one-time request token already stands for (a double submit).
    replay: ProviderOperation | None
    request_token: str


def desk_redeem_reads(
    *, campaign: Campaign, user, check_operation_id, code: str, request_token: str
) -> RedeemReads:
    """:func:`desk_check_for` and ``pipeline.operation_replay`` together: one SELECT of the
    form's check row OR the row holding its request token (the two are never the same row:
    checks carry no request token)."""
    try:
        code = parse_code(code)
        check_id = int(check_operation_id)
    except (ValidationError, TypeError, ValueError):
        return RedeemReads(card=None, replay=None, request_token=request_token)
    own_check = Q(
        pk=check_id,
        campaign=campaign,
        user=user,
        kind=OperationKind.CHECK,
        state=OperationState.SUCCEEDED,
        code_digest=code_digest(code),
    )
    wanted = own_check
    token_usable = bool(request_token) and len(request_token) <= 64
    if token_usable:
        wanted |= Q(request_token=request_token)
    check, replay = None, None
    for row in ProviderOperation.objects.filter(wanted):
        if token_usable and row.request_token == request_token:
            replay = row
        else:
            check = row
    card = None
    if check is not None and (timezone.now() - check.created_at).total_seconds() <= CHECK_MAX_AGE_SECONDS:
        card = token_card_from_check(check=check, code=code)
    return RedeemReads(card=card, replay=replay, request_token=request_token)


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
