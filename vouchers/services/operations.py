"""Settling operations whose outcome is not known: automatic reconcile and manual resolution.

A redeem whose answer got lost is ``unknown``. :func:`operation_reconcile` settles it with a
fresh ``checkcode`` (ARCHITECTURE.md): the balance dropped by the amount → succeeded; unchanged →
failed; anything else → ``needs_review`` for a person. It never sends the redeem again.

"Unchanged" is only trusted once the operation has settled for ``DESK_RECONCILE_SETTLE_SECONDS``:
right after a read timeout the provider may still be working on the request, and calling it
"failed" too early could let the customer redeem twice. "Dropped by the amount" is conclusive
at once.

:func:`operation_resolve` is the manual way out for any open money-moving operation (redeem,
purchase, allocate): a person with ``vouchers.resolve_operations`` decides, gives a reason, and
the decision is audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import staff_text
from ..models import ProviderOperation, ReconcileTicket, Sale
from ..models.ledger import MONEY_MOVING, OperationKind, OperationState
from ..providers.errors import Rejected
from ..security import crypto
from ..staff_text import stored, stored_money, stored_note, stored_sentence, told
from .audit import audit_record
from .pipeline import operation_log, operation_transition, provider_call
from .refusals import Refusal

logger = logging.getLogger(__name__)


def settle_seconds() -> int:
    return settings.DESK_RECONCILE_SETTLE_SECONDS


def max_attempts() -> int:
    return settings.DESK_RECONCILE_MAX_ATTEMPTS


@dataclass(frozen=True)
class Verdict:
    state: str
    #: The note as a stored sentence (code and parameters), rendered when read; ``note`` is its
    #: English text.
    message: dict
    balance_after: object = None

    @property
    def note(self) -> str:
        return self.message["text"]


def reconcile_verdict(*, operation: ProviderOperation, remaining, settled: bool) -> Verdict | None:
    """Compare a fresh remaining value with the balance before the redeem. None: not yet decidable."""
    before, amount = operation.balance_before, operation.amount
    if remaining is None or before is None or amount is None:
        return Verdict(
            OperationState.NEEDS_REVIEW,
            stored_sentence(gettext_lazy("The balance before or after is not known.")),
        )
    if remaining == before - amount:
        return Verdict(
            OperationState.SUCCEEDED,
            stored_sentence(
                gettext_lazy("Balance dropped from %(before)s to %(after)s by the amount: redeemed."),
                before=stored_money(before),
                after=stored_money(remaining),
            ),
            remaining,
        )
    if remaining == before:
        if not settled:
            return None
        return Verdict(
            OperationState.FAILED,
            stored_sentence(
                gettext_lazy("Balance unchanged at %(after)s: not redeemed."), after=stored_money(remaining)
            ),
            remaining,
        )
    return Verdict(
        OperationState.NEEDS_REVIEW,
        stored_sentence(
            gettext_lazy(
                "Balance went from %(before)s to %(after)s, which does not match a redeem of %(amount)s."
            ),
            before=stored_money(before),
            after=stored_money(remaining),
            amount=stored_money(amount),
        ),
        remaining,
    )


def _settle(*, operation_id: int, verdict: Verdict, actor=None) -> ProviderOperation:
    """Write the verdict if the operation is still unknown (another worker may have been faster)."""
    with transaction.atomic():
        operation = ProviderOperation.objects.select_for_update().get(pk=operation_id)
        if operation.state != OperationState.UNKNOWN:
            return operation
        fields = {
            "resolved_at": timezone.now(),
            "resolution_note": verdict.note,
            "resolution_message": verdict.message,
        }
        if verdict.balance_after is not None and verdict.state == OperationState.SUCCEEDED:
            fields["balance_after"] = verdict.balance_after
        # Only the verdict: finished_at and duration stay those of the original call.
        operation_transition(operation, to=verdict.state, **fields)
        audit_record(
            actor=actor,
            action="operation.reconciled",
            campaign=operation.campaign,
            obj=operation,
            summary=f"{operation.get_kind_display()} #{operation.pk} on {operation.code_masked} "
            f"reconciled: {verdict.state}",
            message=stored_sentence(
                staff_text.AUDIT_OPERATION_RECONCILED,
                kind=stored_sentence(OperationKind(operation.kind).label),
                pk=operation.pk,
                code=operation.code_masked,
                state=stored_sentence(OperationState(verdict.state).label),
            ),
            data={"state": verdict.state, "note": verdict.note},
        )
    return operation


def _to_review(operation: ProviderOperation, note) -> ProviderOperation:
    """Reconciling cannot decide: a person settles it (``note`` says why)."""
    return _settle(operation_id=operation.pk, verdict=Verdict(OperationState.NEEDS_REVIEW, note))


def operation_reconcile(*, operation_id: int, at_once: bool = False) -> ProviderOperation:
    """Try to settle one ``unknown`` operation; safe to run any number of times, from anywhere.

    Only redeems can be reconciled (with a fresh check); other kinds go to ``needs_review``.
    A check that gets no answer leaves the operation ``unknown`` for the next run; after
    ``DESK_RECONCILE_MAX_ATTEMPTS`` such runs it goes to ``needs_review``.
    """
    operation = ProviderOperation.objects.select_related("campaign").get(pk=operation_id)
    if operation.state != OperationState.UNKNOWN:
        return operation
    if operation.kind != OperationKind.REDEEM:
        return _to_review(
            operation, stored_sentence(gettext_lazy("Only a person can settle this kind of operation."))
        )
    ticket = ReconcileTicket.objects.filter(operation=operation).first()
    try:
        code = ticket.code if ticket else ""
    except crypto.CredentialDecryptionError:
        code = ""
    if not code:
        return _to_review(
            operation, stored_sentence(gettext_lazy("The code to re-check is no longer available."))
        )

    outcome = provider_call(
        kind=OperationKind.CHECK, campaign=operation.campaign, call=lambda c: c.check(code)
    )
    if outcome.error is not None:
        _log_check(operation=operation, code=code, started=outcome.started, error=outcome.error)
        return _check_failed(operation=operation, ticket=ticket, error=outcome.error)
    info = outcome.result
    _log_check(operation=operation, code=code, started=outcome.started, remaining=info.remaining_value)

    reference = operation.finished_at or operation.created_at
    settled = not at_once and timezone.now() - reference >= timedelta(seconds=settle_seconds())
    verdict = reconcile_verdict(operation=operation, remaining=info.remaining_value, settled=settled)
    if verdict is None:
        ReconcileTicket.objects.filter(pk=ticket.pk).update(last_attempt_at=timezone.now())
        return operation
    return _settle(operation_id=operation.pk, verdict=verdict)


def _log_check(
    *, operation: ProviderOperation, code: str, started: float, remaining=None, error=None
) -> None:
    """The re-check is a provider call like any other: one ledger row (by the system, no user)."""
    operation_log(
        campaign=operation.campaign,
        user=None,
        kind=OperationKind.CHECK,
        started=started,
        code=code,
        request_data={"reconcile_of": operation.pk},
        response_data={"remaining_value": str(remaining)} if remaining is not None else None,
        error=error,
    )


def _check_failed(
    *, operation: ProviderOperation, ticket: ReconcileTicket, error: Exception
) -> ProviderOperation:
    """A re-check without a usable answer: a definite refusal asks a person, anything else waits."""
    if isinstance(error, Rejected):
        return _to_review(
            operation,
            stored_sentence(
                gettext_lazy("The re-check was refused: %(provider_text)s"), provider_text=error.message
            ),
        )
    ReconcileTicket.objects.filter(pk=ticket.pk).update(
        attempts=F("attempts") + 1, last_attempt_at=timezone.now()
    )
    attempts = ReconcileTicket.objects.filter(pk=ticket.pk).values_list("attempts", flat=True).first() or 0
    logger.info(
        "Reconcile check for operation %s got no answer (%s), attempt %s",
        operation.pk,
        type(error).__name__,
        attempts,
    )
    if attempts >= max_attempts():
        return _to_review(operation, stored_note("reconcile.no_answer", attempts=attempts))
    return operation


def stale_pending_cutoff(operation: ProviderOperation) -> timedelta:
    """How long a pending call may take before we assume its process died mid-call."""
    campaign = operation.campaign
    return timedelta(seconds=campaign.connect_timeout + campaign.read_timeout + 60)


def operations_reconcile_due() -> list[int]:
    """Ids of unknown redeems to reconcile now. Stale ``pending`` money-moving operations (their
    process died during the call) become ``unknown`` first (redeems) or ``needs_review`` (others).
    """
    now = timezone.now()
    pending = ProviderOperation.objects.filter(
        kind__in=list(MONEY_MOVING), state=OperationState.PENDING, created_at__lt=now - timedelta(minutes=1)
    ).select_related("campaign")
    for operation in pending:
        if now - operation.created_at < stale_pending_cutoff(operation):
            continue
        target = (
            OperationState.UNKNOWN if operation.kind == OperationKind.REDEEM else OperationState.NEEDS_REVIEW
        )
        with transaction.atomic():
            message = _("The call never finished (process stopped).")
            if operation_transition(
                operation,
                to=target,
                error_code="Interrupted",
                error_message=message,
                staff_text=told(message),
            ):
                audit_record(
                    actor=None,
                    action="operation.interrupted",
                    campaign=operation.campaign,
                    obj=operation,
                    summary=f"{operation.get_kind_display()} #{operation.pk} never finished: {target}",
                    message=stored_sentence(
                        staff_text.AUDIT_OPERATION_INTERRUPTED,
                        kind=stored_sentence(OperationKind(operation.kind).label),
                        pk=operation.pk,
                        state=stored_sentence(OperationState(target).label),
                    ),
                    data={"state": target},
                )
    return list(
        ProviderOperation.objects.filter(kind=OperationKind.REDEEM, state=OperationState.UNKNOWN)
        .order_by("created_at")
        .values_list("pk", flat=True)
    )


RESOLVABLE_STATES = (OperationState.UNKNOWN, OperationState.NEEDS_REVIEW)
SALE_NEEDS_EVIDENCE = gettext_lazy(
    "A sale that went through is settled on the sale's page, with the code found at the provider."
)
RESOLUTIONS = (OperationState.SUCCEEDED, OperationState.FAILED)


def operation_resolve(*, operation_id: int, actor, state: str, reason: str) -> ProviderOperation:
    """A person settles an unknown / needs-review operation of any money-moving kind.

    ``state`` is succeeded (it went through) or failed (it did not). The reason is required and
    recorded with the actor in the operation and in the audit trail. Runs under a row lock, so
    two admins (or an admin and the reconcile task) cannot both settle it.
    """
    reason = (reason or "").strip()
    if not reason:
        raise Refusal(_("Say why you settle it this way."), field="reason")
    if state not in RESOLUTIONS:
        raise Refusal(_("Choose whether the operation went through or not."), field="state")
    with transaction.atomic():
        operation = ProviderOperation.objects.select_for_update().get(pk=operation_id)
        if operation.state not in RESOLVABLE_STATES:
            raise Refusal(
                _("This operation is already settled: %(state)s.") % {"state": operation.get_state_display()}
            )
        if state == OperationState.SUCCEEDED and Sale.objects.filter(operation_id=operation.pk).exists():
            # "Sold" without the code would show a sale with nothing to hand out.
            raise Refusal(SALE_NEEDS_EVIDENCE, field="state")
        previous = operation.state
        now = timezone.now()
        operation_transition(
            operation,
            to=state,
            finished_at=operation.finished_at or now,
            resolved_at=now,
            resolved_by=actor,
            resolution_note=reason[:2000],
        )
        audit_record(
            actor=actor,
            action="operation.resolved",
            campaign=operation.campaign,
            obj=operation,
            summary=f"{operation.get_kind_display()} #{operation.pk} resolved by hand: {previous} → {state}",
            message=stored(
                "operation.resolved",
                kind=stored_sentence(OperationKind(operation.kind).label),
                pk=operation.pk,
                previous=stored_sentence(OperationState(previous).label),
                state=stored_sentence(OperationState(state).label),
            ),
            data={"from": previous, "to": state, "reason": reason[:2000]},
        )
    return operation
