"""Settling a sale whose answer was lost, with evidence (issue 19, item 2).

A purchase or allocate in ``needs_review`` may or may not have sold something. "It did not go
through" needs a reason only. "It went through" needs what was sold, or the sale would show as
sold with no code to hand out:

- a gift token: the code found in LINA's back office, confirmed with a ``checkcode`` through the
  pipeline (the desk's :func:`services.tokens.token_check`, so it is logged and throttled like
  any look-up). The person sees LINA's value and validity, then confirms; the confirmation
  carries the check's ledger id and the code, and the numbers are read back from the ledger
  (:func:`selectors.desk.desk_check_for`), so a tampered form cannot change them;
- a digital voucher: the voucher's details from the Allsafe portal (PIN, serial, expiry);
  Allsafe has no call to confirm them.

A sale recorded as gone through *without* a code (settled by hand before this existed) can be
given its code the same way; its state stays succeeded.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import staff_text
from ..models import ProviderOperation, Sale
from ..models.ledger import OperationKind, OperationState
from ..models.sales import SaleKind
from ..selectors.desk import TokenCard, desk_check_for
from ..values.codes import code_digest, mask_code
from ..values.formatting import format_money
from .audit import audit_record
from .operations import RESOLVABLE_STATES, operation_resolve
from .pipeline import code_fields, operation_transition
from .refusals import Refusal
from .tokens import token_check

S = OperationState


def sale_resolvable(sale: Sale) -> bool:
    """Open (unknown / needs review), or recorded as gone through but without its code."""
    return sale.operation.state in RESOLVABLE_STATES or sale.code_missing


def _require_resolvable(sale: Sale) -> None:
    if not sale_resolvable(sale):
        raise Refusal(
            _("This sale is already settled: %(state)s.") % {"state": sale.operation.get_state_display()}
        )


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise Refusal(_("Say why you settle it this way."), field="reason")
    return reason[:2000]


def _refuse_code_of_another_sale(sale: Sale, kind: str, code: str) -> None:
    other = (
        ProviderOperation.objects.filter(kind=kind, state=S.SUCCEEDED, code_digest=code_digest(code))
        .exclude(pk=sale.operation_id)
        .values_list("sale__pk", flat=True)
        .first()
    )
    if other is not None:
        raise Refusal(
            _("This code is already recorded for sale #%(sale)s; it cannot be the code of this sale.")
            % {"sale": other},
            field="code",
        )


def _refuse_card(sale: Sale, card: TokenCard) -> None:
    """LINA's answer must be this sale's token: known to LINA, with the value that was sold."""
    if card.original_value is None:
        raise Refusal(_("LINA does not know this code. Check it in LINA's back office."), field="code")
    if card.original_value != sale.amount:
        raise Refusal(
            _(
                "LINA says this token was sold for %(found)s, this sale was for %(sold)s: it is not "
                "the token of this sale."
            )
            % {"found": format_money(card.original_value), "sold": format_money(sale.amount)},
            field="code",
        )
    _refuse_code_of_another_sale(sale, OperationKind.PURCHASE, card.code)


def sale_evidence_check(*, sale: Sale, user, code: str) -> TokenCard:
    """Ask LINA about the code found in its back office (one ``checkcode``, in the ledger).
    Returns the card to show before anything is recorded; Refusal when it cannot be this sale's."""
    if not sale.is_gift_token:
        raise Refusal(_("Only a gift token's code can be checked at LINA."))
    _require_resolvable(sale)
    card = token_check(campaign=sale.campaign, user=user, code=code)
    _refuse_card(sale, card)
    return card


def _settle_sold(*, sale: Sale, actor, code: str, reason: str, sale_fields: dict, text: dict) -> Sale:
    """Record the sale as gone through with its code, under a row lock, audited."""
    with transaction.atomic():
        operation = ProviderOperation.objects.select_for_update().get(pk=sale.operation_id)
        locked = Sale.objects.select_for_update().get(pk=sale.pk)
        locked.operation = operation
        _require_resolvable(locked)
        previous, now = operation.state, timezone.now()
        fields = {
            **code_fields(code),
            "resolved_at": now,
            "resolved_by": actor,
            "resolution_note": reason,
        }
        if previous == S.SUCCEEDED:  # only the missing code is added; the state stands
            ProviderOperation.objects.filter(pk=operation.pk).update(**fields)
        else:
            operation_transition(
                operation, to=S.SUCCEEDED, finished_at=operation.finished_at or now, **fields
            )
        for name, value in {"full_code": code[:128], "code_masked": mask_code(code), **sale_fields}.items():
            setattr(sale, name, value)
        sale.save(update_fields=["full_code", "code_masked", *sale_fields])
        audit_record(
            actor=actor,
            action="sale.resolved",
            campaign=sale.campaign,
            obj=sale,
            summary=f"{sale.get_kind_display()} #{sale.pk} settled by hand as sold: {previous} → "
            f"succeeded, code {mask_code(code)}",
            message=staff_text.stored_sentence(
                staff_text.AUDIT_SALE_SETTLED_SOLD,
                kind=staff_text.stored_sentence(SaleKind(sale.kind).label),
                sale=sale.pk,
                previous=staff_text.stored_sentence(OperationState(previous).label),
                code=mask_code(code),
            ),
            # ``text``: what happened as a message code and its parameters, to render in the
            # reader's language (issue 19, item 7); the summary above is the English fallback.
            data={"from": previous, "to": S.SUCCEEDED, "reason": reason, "text": text},
        )
    sale.operation = ProviderOperation.objects.select_related("resolved_by").get(pk=sale.operation_id)
    return sale


def sale_resolve_sold(*, sale: Sale, actor, code: str, check_operation_id, reason: str) -> Sale:
    """Record a gift token as sold with the code a check at LINA confirmed (the actor's own check,
    a few minutes old at most: otherwise they are asked to check again)."""
    reason = _require_reason(reason)
    _require_resolvable(sale)
    card = desk_check_for(
        campaign=sale.campaign, user=actor, check_operation_id=check_operation_id, code=code
    )
    if card is None:
        raise Refusal(_("Check the code at LINA again before recording it."), field="code")
    _refuse_card(sale, card)
    return _settle_sold(
        sale=sale,
        actor=actor,
        code=card.code,
        reason=reason,
        sale_fields={},
        text={
            "code": "sale_resolved_sold",
            "params": {
                "code": mask_code(card.code),
                "check": card.operation.pk,
                "value": str(card.original_value),
            },
        },
    )


def sale_resolve_allocated(*, sale: Sale, actor, pin: str, serial: str, expiry: str, reason: str) -> Sale:
    """Record a digital voucher as allocated with the details found in the Allsafe portal."""
    reason = _require_reason(reason)
    if sale.is_gift_token:
        raise Refusal(_("A gift token is confirmed with its code at LINA."))
    _require_resolvable(sale)
    pin = (pin or "").strip()
    if not pin:
        raise Refusal(_("Enter the voucher's PIN or code as the Allsafe portal shows it."), field="pin")
    _refuse_code_of_another_sale(sale, OperationKind.ALLOCATE, pin)
    details = {"pin": pin, "serial": (serial or "").strip(), "expiry": (expiry or "").strip()}
    fields = {key: value[:200] for key, value in details.items() if value}
    return _settle_sold(
        sale=sale,
        actor=actor,
        code=pin,
        reason=reason,
        sale_fields={"voucher_fields": {**fields, "vendor": sale.vendor}},
        text={"code": "sale_resolved_allocated", "params": {"code": mask_code(pin)}},
    )


def sale_resolve_not_sold(*, sale: Sale, actor, reason: str) -> Sale:
    """Record that nothing was sold (the generic manual resolution, with its audit row)."""
    if sale.code_missing:
        raise Refusal(_("This sale is recorded as gone through; only its code can be added."))
    operation_resolve(operation_id=sale.operation_id, actor=actor, state=S.FAILED, reason=reason)
    sale.operation.refresh_from_db()
    return sale
