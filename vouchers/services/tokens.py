"""Checking and redeeming LINA tokens at the cashier desk.

``token_redeem`` follows claim → call → record (ARCHITECTURE.md):

1. **Claim**, one short transaction under a per-code lock (PostgreSQL advisory lock, see
   services/locking.py): a request token seen before returns its operation (double click, reload,
   back-button resubmit: one provider call, the same result shown again); an open redeem on the
   same code refuses with :class:`CodeBusy` ("being redeemed elsewhere"); a redeem of the code
   that finished after the cashier's check refuses as out of date; otherwise a ``pending`` row is
   inserted with the request token in its unique column, plus an encrypted reconcile ticket.
   The partial unique constraint "one open redeem per code" backs the lock up.
2. **Call** the provider with no transaction or lock held.
3. **Record** in another short transaction: succeeded / failed / unknown, with the audit row.
   An unknown outcome is reconciled at once (services/operations.py) and again by a scheduled
   task; it is never sent again.

Everything the cashier types is validated before any provider call.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from ..models import Campaign, ProviderOperation, ReconcileTicket
from ..models.ledger import OPEN_STATES, OperationKind, OperationState
from ..providers.errors import Misconfigured, OutcomeUnknown, ProviderError
from ..security import crypto
from ..values.codes import code_digest, format_code, mask_code
from ..values.formatting import format_money
from ..values.parsing import parse_amount, parse_code
from . import staff_text as messages
from .audit import audit_record
from .ledger import CodeBusy, operation_claim, operation_log, operation_record
from .locking import lock_key
from .providers import provider_client
from .throttle import LookupThrottled, ThrottleUnavailable, lookup_throttle_check, lookup_throttle_failed

logger = logging.getLogger(__name__)

#: Tokens are valid through the end of their valid-until day in Germany (providers.md).
LINA_TIMEZONE = ZoneInfo("Europe/Berlin")
#: A check older than this cannot be redeemed from: the cashier checks again.
CHECK_MAX_AGE_SECONDS = 30 * 60
#: Keys of provider answers that may hold a full code or a session hash; never stored.
_SECRET_KEYS = {"tokencode", "code", "hash", "qrcode"}


class DeskInputError(Exception):
    """Input refused before any provider call; ``field`` names the form field (None: the form)."""

    def __init__(self, message, *, field: str | None = None):
        self.field = field
        self.message = str(message)
        super().__init__(self.message)


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


@dataclass(frozen=True)
class RedeemOutcome:
    operation: ProviderOperation
    #: True when the request token was used before: nothing was sent, the earlier result stands.
    replayed: bool


def lina_today(now: datetime | None = None) -> date:
    return timezone.localtime(now or timezone.now(), LINA_TIMEZONE).date()


def safe_answer(raw: object) -> dict:
    """The provider's answer without full codes or session hashes, for the ledger."""
    if not isinstance(raw, dict):
        return {"raw": str(raw)[:500]} if raw else {}
    return {k: v for k, v in raw.items() if str(k).lower() not in _SECRET_KEYS}


def _error_answer(error: ProviderError) -> dict:
    """What to keep of an error: the provider's answer and, when rate limited, until when."""
    answer = safe_answer(error.raw)
    retry_at = getattr(error, "retry_at", None)
    if retry_at is not None:
        answer["retry_at"] = retry_at.isoformat()
    return answer


def _lina_client(campaign: Campaign):
    """The campaign's client; refuses campaigns the desk must not call (nothing is sent)."""
    if not campaign.is_lina:
        raise DeskInputError(messages.CAMPAIGN_NOT_LINA)
    if not campaign.is_active_on(lina_today()):
        raise DeskInputError(messages.CAMPAIGN_NOT_LIVE)
    try:
        return provider_client(campaign)
    except crypto.CredentialDecryptionError as exc:
        raise Misconfigured(what_to_check=[_("Re-enter the campaign's credentials.")]) from exc


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

    Raises DeskInputError (bad code, wrong campaign, too many look-ups; no call made) or the
    ProviderError the client raised (logged as a failed check first). Look-ups are throttled per
    user and per campaign (services/throttle.py); unknown or invalid codes count as failed.
    """
    try:
        code = parse_code(code)
    except ValidationError as exc:
        raise DeskInputError(exc.messages[0], field="code") from None
    try:
        lookup_throttle_check(user_id=user.pk, campaign_id=campaign.pk)
    except LookupThrottled as exc:
        raise DeskInputError(messages.lookup_throttled_text(exc.retry_after), field="code") from None
    except ThrottleUnavailable:
        raise DeskInputError(messages.LOOKUP_UNAVAILABLE, field="code") from None
    client = _lina_client(campaign)
    started = time.monotonic()
    try:
        info = client.check(code)
    except ProviderError as error:
        operation_log(
            campaign=campaign, user=user, kind=OperationKind.CHECK, started=started, code=code, error=error
        )
        raise
    if not info.valid:
        lookup_throttle_failed(user_id=user.pk, campaign_id=campaign.pk)
    data = _card_data(info)
    operation = operation_log(
        campaign=campaign,
        user=user,
        kind=OperationKind.CHECK,
        started=started,
        code=code,
        response_data={"card": data, "answer": safe_answer(info.raw)},
        balance_after=info.remaining_value,
    )
    return TokenCard(
        operation=operation,
        code=code,
        display_code=format_code(code),
        valid=info.valid,
        original_value=info.original_value,
        remaining_value=info.remaining_value,
        valid_until=info.valid_until,
        full_value_only=info.full_value_only,
        expired=info.is_expired(lina_today()),
        message=info.message,
    )


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


def desk_check_for(*, campaign: Campaign, user, check_operation_id, code: str) -> TokenCard:
    """The user's own recent successful check of ``code`` in ``campaign``, as a card.

    The redeem form carries the check's id and the code; the numbers come from the ledger, so a
    tampered form cannot raise the remaining value, and the code must match the check's digest.
    """
    try:
        code = parse_code(code)
        check_id = int(check_operation_id)
    except (ValidationError, TypeError, ValueError):
        raise DeskInputError(messages.CHECK_FIRST) from None
    check = ProviderOperation.objects.filter(
        pk=check_id,
        campaign=campaign,
        user=user,
        kind=OperationKind.CHECK,
        state=OperationState.SUCCEEDED,
        code_digest=code_digest(code),
    ).first()
    if check is None or (timezone.now() - check.created_at).total_seconds() > CHECK_MAX_AGE_SECONDS:
        raise DeskInputError(messages.CHECK_FIRST)
    return token_card_from_check(check=check, code=code)


def redeem_validate(*, card: TokenCard, amount: Decimal) -> None:
    """The rules checked before any redeem call (PRODUCT.md, capability 3)."""
    if not card.valid:
        raise DeskInputError(messages.TOKEN_NOT_VALID, field="amount")
    if card.expired:
        raise DeskInputError(
            messages.TOKEN_EXPIRED % {"date": formats.date_format(card.valid_until, "SHORT_DATE_FORMAT")},
            field="amount",
        )
    remaining = card.remaining_value or Decimal("0")
    if remaining <= 0:
        raise DeskInputError(messages.TOKEN_USED_UP, field="amount")
    if amount <= 0:
        raise DeskInputError(messages.AMOUNT_NOT_POSITIVE, field="amount")
    if amount != amount.quantize(Decimal("0.01")):
        raise DeskInputError(messages.AMOUNT_TOO_PRECISE, field="amount")
    if amount > remaining:
        raise DeskInputError(
            messages.AMOUNT_TOO_LARGE % {"remaining": format_money(remaining)}, field="amount"
        )
    if card.full_value_only and amount != remaining:
        raise DeskInputError(
            messages.AMOUNT_MUST_BE_FULL % {"remaining": format_money(remaining)}, field="amount"
        )


def _replay(*, request_token: str, campaign: Campaign, user) -> ProviderOperation | None:
    """The operation a request token already stands for, if it is this user's in this campaign."""
    existing = ProviderOperation.objects.filter(request_token=request_token).first()
    if existing is None:
        return None
    if existing.campaign_id != campaign.pk or existing.user_id != getattr(user, "pk", None):
        raise DeskInputError(messages.FORM_USED)
    return existing


def _open_redeem_on_code(*, campaign: Campaign, digest: str) -> ProviderOperation | None:
    return ProviderOperation.objects.filter(
        campaign=campaign, code_digest=digest, kind=OperationKind.REDEEM, state__in=OPEN_STATES
    ).first()


def _redeemed_since_check(*, campaign: Campaign, digest: str, check: ProviderOperation) -> bool:
    """A redeem of this code that was claimed after the check: the card's balance is stale."""
    return ProviderOperation.objects.filter(
        campaign=campaign,
        code_digest=digest,
        kind=OperationKind.REDEEM,
        created_at__gt=check.created_at,
        state__in=[OperationState.SUCCEEDED, *OPEN_STATES],
    ).exists()


def _refusal_row(*, campaign, user, request_token, code, amount, error_code, message) -> ProviderOperation:
    """A failed operation for an attempt refused before the call, so every attempt is in the ledger."""
    operation = ProviderOperation.objects.create(
        campaign=campaign,
        user=user if getattr(user, "is_authenticated", False) else None,
        kind=OperationKind.REDEEM,
        state=OperationState.FAILED,
        request_token=request_token,
        code_masked=mask_code(code),
        code_digest=code_digest(code),
        amount=amount,
        error_code=error_code,
        error_message=str(message),
        finished_at=timezone.now(),
        duration_ms=0,
    )
    return operation


def _claim(*, campaign, user, code, amount, request_token, card: TokenCard) -> tuple[ProviderOperation, bool]:
    """Step 1 of claim → call → record. Returns (operation, created). See the module docstring."""
    digest = code_digest(code)
    refusal = None
    with transaction.atomic():
        lock_key("redeem", campaign.pk, digest)
        existing = _replay(request_token=request_token, campaign=campaign, user=user)
        if existing is not None:
            return existing, False
        if _open_redeem_on_code(campaign=campaign, digest=digest) is not None:
            refusal = ("CodeBusy", messages.CODE_BUSY)
        elif _redeemed_since_check(campaign=campaign, digest=digest, check=card.operation):
            refusal = ("BalanceChanged", messages.BALANCE_CHANGED)
        if refusal is None:
            try:
                claim = operation_claim(
                    campaign=campaign,
                    user=user,
                    kind=OperationKind.REDEEM,
                    request_token=request_token,
                    code=code,
                    amount=amount,
                    request_data={"amount": f"{amount:.2f}", "check_operation": card.operation.pk},
                    extra={"balance_before": card.remaining_value},
                )
            except CodeBusy:
                refusal = ("CodeBusy", messages.CODE_BUSY)
            else:
                if not claim.created:
                    return claim.operation, False
                operation = claim.operation
                ReconcileTicket.objects.create(operation=operation, code=code)
                return operation, True
        try:
            with transaction.atomic():
                row = _refusal_row(
                    campaign=campaign,
                    user=user,
                    request_token=request_token,
                    code=code,
                    amount=amount,
                    error_code=refusal[0],
                    message=refusal[1],
                )
        except IntegrityError:
            # The same request token was recorded meanwhile (only possible where the lock is a
            # no-op, e.g. SQLite): that earlier row is the answer to this resubmit.
            existing = ProviderOperation.objects.filter(request_token=request_token).first()
            if existing is None:
                raise
            return existing, False
    # Committed: the refused attempt stays in the ledger; a resubmit shows this refusal again.
    if refusal[0] == "CodeBusy":
        raise CodeBusy(row)
    raise DeskInputError(refusal[1])


def _record(*, operation_id: int, state: str, started: float, **kwargs) -> ProviderOperation:
    """Step 3: record what came back, with its audit row, unless someone settled it meanwhile."""
    with transaction.atomic():
        operation = (
            ProviderOperation.objects.select_for_update(of=("self",))
            .select_related("user", "campaign")
            .get(pk=operation_id)
        )
        if operation.state not in (OperationState.PENDING, OperationState.UNKNOWN):
            logger.warning("Redeem operation %s was settled before its answer was recorded", operation_id)
            return operation
        operation_record(operation=operation, state=state, started=started, **kwargs)
        if state in (OperationState.SUCCEEDED, OperationState.FAILED):
            ReconcileTicket.objects.filter(operation=operation).delete()
        action = {
            OperationState.SUCCEEDED: "token.redeemed",
            OperationState.FAILED: "token.redeem_failed",
        }.get(state, "token.redeem_unknown")
        audit_record(
            actor=operation.user,
            action=action,
            campaign=operation.campaign,
            obj=operation,
            summary=f"Redeem of {operation.amount} € on {operation.code_masked}: {state}",
            data={"state": state, "amount": str(operation.amount), "error": operation.error_code},
        )
    return operation


def token_redeem(
    *,
    campaign: Campaign,
    user,
    code: str,
    amount: Decimal | str,
    request_token: str,
    check_operation_id,
    card: TokenCard | None = None,
) -> RedeemOutcome:
    """Redeem ``amount`` from the token checked in ``check_operation_id`` (see module docstring).

    Raises DeskInputError (refused before any call), CodeBusy (another till holds the code) or
    nothing: provider refusals and errors are recorded on the returned operation, an unknown
    outcome leaves it ``unknown`` (reconciled at once and later by a task). ``card``: the
    caller's card of that same check (``desk_check_for``), to save reading it twice.
    """
    if not request_token or len(request_token) > 64:
        raise DeskInputError(messages.CHECK_FIRST)
    replay = _replay(request_token=request_token, campaign=campaign, user=user)
    if replay is not None:
        return RedeemOutcome(replay, replayed=True)
    if card is None or card.operation.pk != check_operation_id:
        card = desk_check_for(campaign=campaign, user=user, check_operation_id=check_operation_id, code=code)
    if not isinstance(amount, Decimal):
        try:
            amount = parse_amount(amount)
        except ValidationError as exc:
            raise DeskInputError(exc.messages[0], field="amount") from None
    redeem_validate(card=card, amount=amount)
    client = _lina_client(campaign)

    operation, created = _claim(
        campaign=campaign, user=user, code=card.code, amount=amount, request_token=request_token, card=card
    )
    if not created:
        return RedeemOutcome(operation, replayed=True)

    started = time.monotonic()
    try:
        result = client.redeem(card.code, amount)
    except OutcomeUnknown as error:
        operation = _record(
            operation_id=operation.pk, state=OperationState.UNKNOWN, started=started, error=error
        )
        return RedeemOutcome(_reconcile_at_once(operation), replayed=False)
    except ProviderError as error:
        # A definite answer or a call that was not sent (client contract): nothing was redeemed.
        operation = _record(
            operation_id=operation.pk,
            state=OperationState.FAILED,
            started=started,
            error=error,
            response_data=_error_answer(error),
        )
        return RedeemOutcome(operation, replayed=False)
    except Exception:
        # Not a mapped provider error (a bug, an unexpected transport failure): the request may
        # have gone out, so the outcome is unknown, never "failed" and never retried.
        logger.exception("Redeem call of operation %s ended with an unexpected error", operation.pk)
        operation = _record(
            operation_id=operation.pk,
            state=OperationState.UNKNOWN,
            started=started,
            error=OutcomeUnknown(detail="unexpected error"),
        )
        return RedeemOutcome(_reconcile_at_once(operation), replayed=False)

    before = result.balance_before if result.balance_before is not None else card.remaining_value
    after = result.balance_after
    if after is None and before is not None:
        after = before - amount
    operation = _record(
        operation_id=operation.pk,
        state=OperationState.SUCCEEDED,
        started=started,
        response_data=safe_answer(result.raw),
        balance_before=before,
        balance_after=after,
    )
    return RedeemOutcome(operation, replayed=False)


def _reconcile_at_once(operation: ProviderOperation) -> ProviderOperation:
    from .operations import operation_reconcile

    try:
        return operation_reconcile(operation_id=operation.pk, at_once=True)
    except Exception:
        # The scheduled task tries again; the cashier sees "outcome unknown", never an error page.
        logger.exception("Immediate reconcile of operation %s failed", operation.pk)
        operation.refresh_from_db()
        return operation
