"""Selling LINA gift tokens, allocating Allsafe digital vouchers, and sale templates.

Both money-moving calls go through the provider-call pipeline (services/pipeline.py): the claim
inserts the ledger operation (``pending``, the one-time request token in its unique column)
together with the Sale that points at it; the provider is called with no transaction held; the
outcome, the sale's fields and the audit event are recorded in one transaction.

A request token seen before returns the earlier sale and calls nothing (double submit, reload,
a bulk job run again). A lost answer (OutcomeUnknown, or anything unexpected while the request
may have been sent) leaves the operation ``needs_review``: it is never sent again, a person
settles it through the generic review of unresolved operations. The sale has no state column of
its own; it shows its operation's state.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from .. import staff_text
from ..models import BulkSaleRow, Campaign, Sale, SaleTemplate
from ..models.campaigns import Provider
from ..models.ledger import OperationKind, OperationState
from ..models.sales import SaleKind
from ..providers.base import AllocateRequest, PurchaseRequest
from ..security.redaction import ledger_safe
from ..selectors.sales import AvailabilitySnapshot, availability_latest
from ..values.codes import mask_code, normalize_code
from .audit import audit_record
from .pipeline import Outcome, code_fields, operation_claim, operation_finish, provider_call
from .refusals import Refusal, refusal_for
from .stock import stock_poll


def new_request_token() -> str:
    """A one-time token for a sell form or a bulk row; the ledger keeps it unique."""
    return uuid.uuid4().hex


def require_usable(campaign: Campaign, provider: str) -> None:
    if campaign.provider != provider:
        raise Refusal(staff_text.WRONG_PROVIDER)
    if not campaign.is_active_on():
        raise Refusal(staff_text.SALE_CAMPAIGN_NOT_LIVE)


def _web_link(url: str | None) -> str:
    """The provider's layout link if it is a plain http(s) URL (it ends up in an href)."""
    url = (url or "").strip()
    return url if url.lower().startswith(("https://", "http://")) and len(url) <= 500 else ""


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in (fields or {}).items():
        if isinstance(value, (str, int, float, bool, dict, list)) or value is None:
            out[str(key)] = value
        else:
            out[str(key)] = str(value)
    return out


def _claim_sale(
    *,
    campaign: Campaign,
    user,
    kind: str,
    request_token: str,
    amount: Decimal,
    request_data: dict[str, Any],
    sale_fields: dict[str, Any],
    bulk_row: BulkSaleRow | None = None,
) -> tuple[Sale, bool]:
    """The pending operation and its sale in one transaction. (sale, created)."""
    made: list[Sale] = []

    def create_sale(operation):
        made.append(
            Sale.objects.create(
                campaign=campaign,
                operation=operation,
                seller=user if getattr(user, "is_authenticated", False) else None,
                kind=kind,
                amount=amount,
                **sale_fields,
            )
        )
        if bulk_row is not None:
            BulkSaleRow.objects.filter(pk=bulk_row.pk).update(sale=made[0])
            bulk_row.sale = made[0]

    claim = operation_claim(
        campaign=campaign,
        user=user,
        kind=OperationKind.PURCHASE if kind == SaleKind.GIFT_TOKEN else OperationKind.ALLOCATE,
        request_token=request_token,
        amount=amount,
        request_data=request_data,
        on_claim=create_sale,
    )
    if claim.created:
        return made[0], True
    sale = Sale.objects.with_related().filter(operation=claim.operation).first()
    if sale is None:
        raise Refusal(staff_text.SALE_FORM_USED)
    return sale, False


def _finish(
    sale: Sale,
    outcome: Outcome,
    *,
    actor,
    action: str,
    message: dict | None,
    response_data: dict | None = None,
    code: str = "",
    operation_fields: dict | None = None,
    sale_fields: dict | None = None,
) -> Sale:
    """Record the outcome; a success also writes the sale's fields (the code, the voucher)."""
    if outcome.state == OperationState.SUCCEEDED:
        operation_fields = {**(operation_fields or {}), **code_fields(code)}
        sale_fields = {**sale_fields, "full_code": code[:128]}
        sale_fields["code_masked"] = operation_fields["code_masked"]
    if outcome.state != OperationState.SUCCEEDED:
        kind = staff_text.stored_sentence(SaleKind(sale.kind).label)
        if outcome.state == OperationState.FAILED:
            action = "sale.failed"
            message = staff_text.stored_sentence(
                staff_text.AUDIT_SALE_FAILED,
                kind=kind,
                sale=sale.pk,
                # What staff were told (the provider's own words labelled), never the class name.
                error=staff_text.told_stored(staff_text.told_staff(outcome.error, money_moving=True)),
            )
        else:
            action = "sale.needs_review"
            message = staff_text.stored_sentence(staff_text.AUDIT_SALE_NEEDS_REVIEW, kind=kind, sale=sale.pk)

    def write_sale(operation, late):
        for name, value in (sale_fields or {}).items():
            setattr(sale, name, value)
        if sale_fields:
            sale.save(update_fields=list(sale_fields))
        sale.operation = operation

    def audit(operation, late):
        # Stored as a sentence with its figures: the audit shows it in the reader's language.
        kept = staff_text.stored_sentence(staff_text.AUDIT_ANSWER_LATE, summary=message) if late else message
        return {
            "actor": actor,
            "action": action,
            "obj": sale,
            "summary": kept["text"],
            "message": kept,
            "data": {"operation": operation.pk, "state": operation.state, "error": operation.error_code},
        }

    operation_finish(
        operation_id=sale.operation_id,
        outcome=outcome,
        response_data=response_data,
        fields=operation_fields,
        after=write_sale,
        audit=audit,
    )
    return sale


# --- Gift tokens (LINA purchase) ---------------------------------------------------------------


def gift_token_sell(
    *,
    campaign: Campaign,
    user,
    request_token: str,
    amount: Decimal,
    template: SaleTemplate,
    layout: int | None = None,
    from_name: str = "",
    for_name: str = "",
    email: str = "",
    bulk_row: BulkSaleRow | None = None,
) -> Sale:
    """Sell one LINA gift token, once per ``request_token``; returns the sale (any state).

    The input must already be validated (sell form or bulk preview). Names are sent only with a
    layout (providers.md, purchase). Raises Refusal before any call when the campaign is not
    usable; provider outcomes are recorded on the sale's operation, not raised.
    """
    require_usable(campaign, Provider.LINA)
    if template.campaign_id != campaign.pk:
        raise Refusal(_("This template belongs to another campaign."))
    if not layout:
        layout, from_name, for_name = None, "", ""
    sale, created = _claim_sale(
        campaign=campaign,
        user=user,
        kind=SaleKind.GIFT_TOKEN,
        request_token=request_token,
        amount=amount,
        request_data={
            "amount": str(amount),
            "template": template.name,
            "layout": layout,
            "from": from_name,
            "for": for_name,
            "email": email,
        },
        sale_fields={
            "template": template,
            "template_name": template.name,
            "layout": layout,
            "from_name": from_name,
            "for_name": for_name,
            "email": email,
        },
        bulk_row=bulk_row,
    )
    if not created:
        return sale

    request = PurchaseRequest(
        amount=amount,
        template_hash=template.template_hash,
        email=email,
        layout=layout,
        from_name=from_name,
        for_name=for_name,
    )
    outcome = provider_call(
        kind=OperationKind.PURCHASE, campaign=campaign, call=lambda c: c.purchase(request)
    )
    if outcome.state != OperationState.SUCCEEDED:
        return _finish(sale, outcome, actor=user, action="", message=None)
    result = outcome.result
    code = normalize_code(result.code)
    return _finish(
        sale,
        outcome,
        response_data=ledger_safe(result.raw, [result.code]),
        code=code,
        operation_fields={"amount": result.amount},
        sale_fields={
            "amount": result.amount,
            "qrcode_png_base64": result.qrcode_png_base64 or "",
            "layout_url": _web_link(result.layout_url),
        },
        actor=user,
        action="sale.gift_token_sold",
        message=staff_text.stored_sentence(
            staff_text.AUDIT_GIFT_TOKEN_SOLD,
            code=mask_code(code),
            amount=staff_text.stored_money(result.amount, campaign.currency),
        ),
    )


# --- Digital vouchers (Allsafe allocate) -------------------------------------------------------


def availability_refresh(*, campaign: Campaign, user) -> AvailabilitySnapshot:
    """Poll Allsafe now, through the stock service, so the allocate form and the stock pages read
    the same snapshots (and a refresh also updates alerts). Raises Refusal when it fails."""
    if campaign.provider != Provider.ALLSAFE:
        raise Refusal(staff_text.WRONG_PROVIDER)
    result = stock_poll(campaign_id=campaign.pk)
    if result.status == "skipped":
        raise Refusal(_("This campaign is switched off or outside its dates; nothing was asked."))
    if result.status == "failed" and result.error is not None:
        raise refusal_for(result.error, message=result.error.message)
    # "busy": another poll of this campaign is running right now; show the latest we have.
    return availability_latest(campaign=campaign)


def digital_voucher_allocate(
    *, campaign: Campaign, user, request_token: str, vendor: str, value: Decimal
) -> Sale:
    """Allocate one Allsafe voucher, once per ``request_token``; returns the sale (any state).

    Allsafe has no idempotency key (providers.md), so a lost answer may or may not have used a
    voucher: it is left ``needs_review`` and never sent again. The request token is sent as the
    reference, so a person can ask Allsafe about exactly this request.
    """
    require_usable(campaign, Provider.ALLSAFE)
    sale, created = _claim_sale(
        campaign=campaign,
        user=user,
        kind=SaleKind.DIGITAL_VOUCHER,
        request_token=request_token,
        amount=value,
        request_data={"vendor": vendor, "value": str(value), "reference": request_token},
        sale_fields={"vendor": vendor},
    )
    if not created:
        return sale
    request = AllocateRequest(vendor=vendor, value=value, reference=request_token)
    outcome = provider_call(
        kind=OperationKind.ALLOCATE, campaign=campaign, call=lambda c: c.allocate(request)
    )
    if outcome.state != OperationState.SUCCEEDED:
        return _finish(sale, outcome, actor=user, action="", message=None)
    voucher = outcome.result
    code = str(voucher.code or "")
    fields = _jsonable(voucher.fields or {})
    value_received = voucher.value if voucher.value is not None else value
    return _finish(
        sale,
        outcome,
        response_data=ledger_safe(fields, [code]),
        code=code,
        sale_fields={
            "voucher_fields": fields,
            "vendor": voucher.vendor or vendor,
            "amount": value_received,
        },
        actor=user,
        action="sale.voucher_allocated",
        message=staff_text.stored_sentence(
            staff_text.AUDIT_VOUCHER_ALLOCATED,
            vendor=voucher.vendor or vendor,
            value=staff_text.stored_money(value_received, campaign.currency),
        ),
    )


# --- Sale templates (managed by campaign admins in the Django admin) ---------------------------


def sale_template_save(
    *, template: SaleTemplate, actor, changed_fields: list[str] | None = None
) -> SaleTemplate:
    creating = template.pk is None
    template.allowed_layouts = sorted({int(x) for x in template.allowed_layouts or []})
    with transaction.atomic():
        template.save()
        audit_record(
            actor=actor,
            action="sale_template.created" if creating else "sale_template.changed",
            campaign=template.campaign,
            obj=template,
            summary=f"Sale template {template.name} {'created' if creating else 'changed'}",
            message=staff_text.stored_sentence(
                staff_text.AUDIT_SALE_TEMPLATE_CREATED
                if creating
                else staff_text.AUDIT_SALE_TEMPLATE_CHANGED,
                template=template.name,
            ),
            data={
                "fields": sorted(changed_fields or []),
                "layouts": template.allowed_layouts,
                "active": template.is_active,
            },
        )
    return template


def sale_template_delete(*, template: SaleTemplate, actor) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="sale_template.deleted",
            campaign=template.campaign,
            obj=template,
            summary=f"Sale template {template.name} deleted",
            message=staff_text.stored_sentence(
                staff_text.AUDIT_SALE_TEMPLATE_DELETED, template=template.name
            ),
        )
        template.delete()
