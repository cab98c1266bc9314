"""Checking and redeeming LINA tokens at the cashier desk, through the pipeline (services/pipeline.py).

A redeem reads its request token once (seen before: the earlier operation is shown again, one
provider call per form). Its claim runs under a per-code advisory lock (services/locking.py): an
open redeem on the code is refused as busy (``code="CodeBusy"``), a redeem after the cashier's
check as out of date; the partial unique constraint "one open redeem per code" backs the lock
up. An unknown outcome is reconciled at once (services/operations.py) and again by a scheduled
task; it is never sent again. Everything the cashier types is validated before any call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import formats

from .. import staff_text as messages
from ..models import Campaign, ProviderOperation, ReconcileTicket
from ..models.ledger import OPEN_STATES, OperationKind, OperationState
from ..providers.errors import ProviderError
from ..security.redaction import ledger_safe
from ..selectors.desk import RedeemReads, TokenCard, desk_check_for, lina_today, token_card_from_check
from ..values.codes import code_digest
from ..values.formatting import format_money
from ..values.parsing import parse_amount, parse_code
from .operations import operation_reconcile
from .pipeline import operation_claim, operation_finish, operation_log, operation_replay, provider_call
from .providers import provider_client
from .refusals import Refusal, refusal_for
from .throttle import ThrottleUnavailable, lookup_throttle_check, lookup_throttle_failed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RedeemOutcome:
    operation: ProviderOperation
    #: True when the request token was used before: nothing was sent, the earlier result stands.
    replayed: bool


def safe_answer(raw: object) -> dict:
    """The provider's answer without full codes or session hashes, for the ledger."""
    if not isinstance(raw, dict):
        return {"raw": str(raw)[:500]} if raw else {}
    return ledger_safe(raw)


def _lina_client(campaign: Campaign):
    """The campaign's client; refuses campaigns the desk must not call (nothing is sent)."""
    if not campaign.is_lina:
        raise Refusal(messages.CAMPAIGN_NOT_LINA)
    if not campaign.is_active_on(lina_today()):
        raise Refusal(messages.CAMPAIGN_NOT_LIVE)
    try:
        return provider_client(campaign)
    except ProviderError as error:
        raise refusal_for(error) from error


def _shared_reads(client) -> list[str]:
    """The shared-cache keys the client reads before its call (none for clients without any)."""
    reads = getattr(client, "shared_reads", None)
    return list(reads()) if reads is not None else []


def _prime_client(client) -> None:
    """Read the client's shared-cache keys in one round trip instead of one per key. A cache
    that cannot be reached is left to the client, which refuses the call for it (nothing sent)."""
    keys = _shared_reads(client)
    if not keys:
        return
    try:
        found = cache.get_many(keys)
    except Exception:  # the client's own read fails the same way and says so properly
        return
    client.prime_shared_reads(found)


def _card_data(info) -> dict:
    return {
        "valid": bool(info.valid),
        "original_value": str(info.original_value) if info.original_value is not None else None,
        "remaining_value": str(info.remaining_value) if info.remaining_value is not None else None,
        "valid_until": info.valid_until.isoformat() if info.valid_until else None,
        "full_value_only": bool(info.full_value_only),
        "message": info.message or "",
    }


def token_check(*, campaign: Campaign, user, code: str) -> TokenCard:
    """Check a code with the provider and log the check in the ledger.

    Raises Refusal: bad code, wrong campaign, too many look-ups (no call made), or the
    provider's error (``by_provider``; logged as a failed check first). Look-ups are throttled
    per user and per campaign (services/throttle.py); unknown or invalid codes count as failed.
    """
    try:
        code = parse_code(code)
    except ValidationError as exc:
        raise Refusal(exc.messages[0], field="code") from None
    client = _lina_client(campaign)
    shared_reads = _shared_reads(client)
    try:
        # The throttle's counters and the client's session hash and guard: one cache round trip.
        found = lookup_throttle_check(user_id=user.pk, campaign_id=campaign.pk, also=shared_reads)
    except ThrottleUnavailable:
        raise Refusal(messages.LOOKUP_UNAVAILABLE, field="code", code="LookupUnavailable") from None
    if shared_reads:
        client.prime_shared_reads(found)
    outcome = provider_call(kind=OperationKind.CHECK, client=client, call=lambda c: c.check(code))
    logged = {
        "campaign": campaign,
        "user": user,
        "kind": OperationKind.CHECK,
        "started": outcome.started,
        "code": code,
    }
    if outcome.error is not None:
        operation_log(**logged, error=outcome.error)
        # A check moves no money: a timeout is a plain "no answer, nothing changed".
        raise refusal_for(outcome.error, message=messages.check_error_text(outcome.error))
    info = outcome.result
    if not info.valid:
        lookup_throttle_failed(user_id=user.pk, campaign_id=campaign.pk)
    data = _card_data(info)
    operation = operation_log(
        **logged,
        response_data={"card": data, "answer": safe_answer(info.raw)},
        balance_after=info.remaining_value,
    )
    return token_card_from_check(check=operation, code=code)


def redeem_validate(*, card: TokenCard, amount: Decimal) -> None:
    """The rules checked before any redeem call (PRODUCT.md, capability 3)."""
    if not card.valid:
        raise Refusal(messages.TOKEN_NOT_VALID, field="amount")
    if card.expired:
        raise Refusal(
            messages.TOKEN_EXPIRED % {"date": formats.date_format(card.valid_until, "SHORT_DATE_FORMAT")},
            field="amount",
        )
    remaining = card.remaining_value or Decimal("0")
    if remaining <= 0:
        raise Refusal(messages.TOKEN_USED_UP, field="amount")
    if amount <= 0:
        raise Refusal(messages.AMOUNT_NOT_POSITIVE, field="amount")
    if amount != amount.quantize(Decimal("0.01")):
        raise Refusal(messages.AMOUNT_TOO_PRECISE, field="amount")
    if amount > remaining:
        raise Refusal(messages.AMOUNT_TOO_LARGE % {"remaining": format_money(remaining)}, field="amount")
    if card.full_value_only and amount != remaining:
        raise Refusal(messages.AMOUNT_MUST_BE_FULL % {"remaining": format_money(remaining)}, field="amount")


def _own_replay(existing: ProviderOperation, *, campaign: Campaign, user) -> RedeemOutcome:
    """An earlier operation of this request token, shown again if it is this user's in this campaign."""
    if existing.campaign_id != campaign.pk or existing.user_id != getattr(user, "pk", None):
        raise Refusal(messages.FORM_USED)
    return RedeemOutcome(existing, replayed=True)


def _refuse_on_code(*, campaign: Campaign, digest: str, check: ProviderOperation):
    """Under the code's lock: busy (an open redeem), or stale (a redeem claimed after the check).

    One statement: the distinct states of the code's redeems that are open, or succeeded after
    the check (an open one, of whatever age, makes the code busy before anything else)."""
    states = set(
        ProviderOperation.objects.filter(campaign=campaign, code_digest=digest, kind=OperationKind.REDEEM)
        .filter(Q(state__in=OPEN_STATES) | Q(created_at__gt=check.created_at, state=OperationState.SUCCEEDED))
        .order_by()
        .values_list("state", flat=True)
        .distinct()
    )
    if states & set(OPEN_STATES):
        return "CodeBusy", messages.CODE_BUSY
    if states:
        return "BalanceChanged", messages.BALANCE_CHANGED
    return None


def _redeem_audit(operation: ProviderOperation, late: bool) -> dict:
    action = {
        OperationState.SUCCEEDED: "token.redeemed",
        OperationState.FAILED: "token.redeem_failed",
    }.get(operation.state, "token.redeem_unknown")
    return {
        "actor": operation.user,
        "action": action,
        "obj": operation,
        "summary": f"Redeem of {operation.amount} € on {operation.code_masked}: {operation.state}",
        "message": messages.stored_sentence(
            messages.AUDIT_REDEEM,
            amount=messages.stored_money(operation.amount),
            code=operation.code_masked,
            state=messages.stored_sentence(OperationState(operation.state).label),
        ),
        "data": {"state": operation.state, "amount": str(operation.amount), "error": operation.error_code},
    }


def token_redeem(
    *,
    campaign: Campaign,
    user,
    code: str,
    amount: Decimal | str,
    request_token: str,
    check_operation_id,
    card: TokenCard | None = None,
    prior: RedeemReads | None = None,
) -> RedeemOutcome:
    """Redeem ``amount`` from the token checked in ``check_operation_id`` (see module docstring).

    Raises Refusal (refused before any call; ``code="CodeBusy"`` when another till holds the
    code) or nothing: provider refusals and errors are recorded on the returned operation, an unknown
    outcome leaves it ``unknown`` (reconciled at once and later by a task). ``card``: the
    caller's card of that same check (``desk_check_for``), to save reading it twice; ``prior``:
    the card and the request token's earlier operation read together (``desk_redeem_reads``).
    """
    if not request_token or len(request_token) > 64:
        raise Refusal(messages.CHECK_FIRST)
    if prior is not None and prior.request_token == request_token:
        replay, card = prior.replay, card or prior.card
    else:
        replay = operation_replay(request_token)
    if replay is not None:
        return _own_replay(replay, campaign=campaign, user=user)
    if card is None or card.operation.pk != check_operation_id:
        card = desk_check_for(campaign=campaign, user=user, check_operation_id=check_operation_id, code=code)
    if card is None:
        raise Refusal(messages.CHECK_FIRST)
    if not isinstance(amount, Decimal):
        try:
            amount = parse_amount(amount)
        except ValidationError as exc:
            raise Refusal(exc.messages[0], field="amount") from None
    redeem_validate(card=card, amount=amount)
    client = _lina_client(campaign)

    digest = code_digest(card.code)
    claim = operation_claim(
        campaign=campaign,
        user=user,
        kind=OperationKind.REDEEM,
        request_token=request_token,
        code=card.code,
        amount=amount,
        request_data={"amount": f"{amount:.2f}", "check_operation": card.operation.pk},
        extra={"balance_before": card.remaining_value},
        lock=("redeem", campaign.pk, digest),
        refuse=lambda: _refuse_on_code(campaign=campaign, digest=digest, check=card.operation),
        on_claim=lambda op: ReconcileTicket.objects.create(operation=op, code=card.code),
    )
    if not claim.created:
        return _own_replay(claim.operation, campaign=campaign, user=user)

    _prime_client(client)  # right before the call, which uses what it read
    outcome = provider_call(
        kind=OperationKind.REDEEM, client=client, call=lambda c: c.redeem(card.code, amount)
    )
    fields, response = {}, None
    if outcome.state == OperationState.SUCCEEDED:
        result = outcome.result
        before = result.balance_before if result.balance_before is not None else card.remaining_value
        after = result.balance_after
        if after is None and before is not None:
            after = before - amount
        fields, response = {"balance_before": before, "balance_after": after}, safe_answer(result.raw)
    operation = operation_finish(
        claimed=claim.operation,
        outcome=outcome,
        response_data=response,
        fields=fields,
        audit=_redeem_audit,
    )
    if operation.state == OperationState.UNKNOWN:
        operation = _reconcile_at_once(operation)
    return RedeemOutcome(operation, replayed=False)


def _reconcile_at_once(operation: ProviderOperation) -> ProviderOperation:
    try:
        return operation_reconcile(operation_id=operation.pk, at_once=True)
    except Exception:
        # The scheduled task tries again; the cashier sees "outcome unknown", never an error page.
        logger.exception("Immediate reconcile of operation %s failed", operation.pk)
        operation.refresh_from_db()
        return operation
