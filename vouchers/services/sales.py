"""Selling LINA gift tokens, allocating Allsafe digital vouchers, and bulk sales.

Both money-moving calls follow claim → call → record (ARCHITECTURE.md):

1. one short transaction inserts the ledger operation (``pending``, the one-time request token
   in its unique column) together with the Sale that points at it;
2. the provider is called with no transaction or lock held;
3. another short transaction records the outcome and the audit event.

A request token seen before returns the earlier sale and calls nothing (double submit, reload,
a bulk job run again). A lost answer (OutcomeUnknown, or anything unexpected while the request
may have been sent) leaves the operation ``needs_review``: it is never sent again, a person
settles it through the generic review of unresolved operations. The sale has no state column of
its own; it shows its operation's state.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from ..models import BulkSaleRow, Campaign, ProviderOperation, Sale, SaleTemplate, StockSnapshot
from ..models.campaigns import Provider
from ..models.ledger import OperationKind, OperationState
from ..models.sales import SaleKind
from ..providers.base import AllocateRequest, PurchaseRequest
from ..providers.errors import Misconfigured, OutcomeUnknown, ProviderError
from ..values.codes import code_digest, format_code, mask_code, normalize_code
from .audit import audit_record
from .ledger import operation_claim, operation_record
from .providers import provider_client
from .stock import stock_poll

logger = logging.getLogger(__name__)


class SaleRefused(Exception):
    """Our own "no" before any provider call (campaign not live, wrong provider, reused token)."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def new_request_token() -> str:
    """A one-time token for a sell form or a bulk row; the ledger keeps it unique."""
    return uuid.uuid4().hex


def require_usable(campaign: Campaign, provider: str) -> None:
    if campaign.provider != provider:
        raise SaleRefused(_("This campaign does not use that provider."))
    if not campaign.is_active_on():
        raise SaleRefused(
            _("The campaign is not live (switched off or outside its dates). Nothing was sold.")
        )


def _ledger_safe(raw: Any, code: str) -> Any:
    """The provider's answer for the ledger, without the full code, QR image or code-bearing links."""
    secrets = {c for c in (code, normalize_code(code), format_code(code)) if c}

    def clean(value, key=""):
        if isinstance(value, dict):
            return {k: clean(v, str(k)) for k, v in value.items() if str(k).lower() != "qrcode"}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if key.lower() in ("code", "pin", "tokencode") and value:
            return mask_code(str(value))
        if isinstance(value, str) and any(s in value for s in secrets):
            return _("[kept on the sale]")
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        return str(value)

    return clean(raw)


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
    """Step 1: the pending operation and its sale in one transaction. (sale, created)."""
    operation_kind = OperationKind.PURCHASE if kind == SaleKind.GIFT_TOKEN else OperationKind.ALLOCATE
    with transaction.atomic():
        claim = operation_claim(
            campaign=campaign,
            user=user,
            kind=operation_kind,
            request_token=request_token,
            amount=amount,
            request_data=request_data,
        )
        if not claim.created:
            sale = Sale.objects.with_related().filter(operation=claim.operation).first()
            if sale is None:
                raise SaleRefused(_("This form was already used for something else. Open it again."))
            return sale, False
        sale = Sale.objects.create(
            campaign=campaign,
            operation=claim.operation,
            seller=user if getattr(user, "is_authenticated", False) else None,
            kind=kind,
            amount=amount,
            **sale_fields,
        )
        if bulk_row is not None:
            BulkSaleRow.objects.filter(pk=bulk_row.pk).update(sale=sale)
            bulk_row.sale = sale
    return sale, True


def _record(
    sale: Sale,
    *,
    state: str,
    started: float,
    error: ProviderError | None = None,
    response_data: dict | None = None,
    operation_fields: dict | None = None,
    sale_fields: dict | None = None,
    actor=None,
    action: str,
    summary: str,
) -> Sale:
    """Step 3: the outcome, under a row lock so a concurrent manual resolution is not overwritten."""
    with transaction.atomic():
        operation = ProviderOperation.objects.select_for_update().get(pk=sale.operation_id)
        if operation.state != OperationState.PENDING:
            # Someone settled the operation while the call ran; keep their decision, add the answer.
            state = operation.state
            summary = summary + " " + _("(answer arrived after the operation was resolved)")
        operation_record(
            operation=operation,
            state=state,
            started=started,
            response_data=response_data,
            error=error,
            **(operation_fields or {}),
        )
        if sale_fields:
            for name, value in sale_fields.items():
                setattr(sale, name, value)
            sale.save(update_fields=list(sale_fields))
        sale.operation = operation
        audit_record(
            actor=actor,
            action=action,
            campaign=sale.campaign,
            obj=sale,
            summary=summary,
            data={"operation": operation.pk, "state": operation.state, "error": error.code if error else ""},
        )
    return sale


def _record_failure(sale: Sale, exc: Exception, *, started: float, actor) -> Sale:
    """A definite "not done" (rejected, unavailable, rate limited ...) or a lost answer."""
    if isinstance(exc, ProviderError) and not isinstance(exc, OutcomeUnknown):
        return _record(
            sale,
            state=OperationState.FAILED,
            started=started,
            error=exc,
            response_data=_ledger_safe(exc.raw, "") if isinstance(exc.raw, (dict, list)) else None,
            actor=actor,
            action="sale.failed",
            summary=f"{sale.get_kind_display()} #{sale.pk} failed: {exc.code}",
        )
    if not isinstance(exc, ProviderError):
        # A bug or an unexpected library error while the request may already have been sent.
        logger.exception("Unexpected error during %s for sale %s", sale.kind, sale.pk)
        exc = OutcomeUnknown(detail=type(exc).__name__)
    return _record(
        sale,
        state=OperationState.NEEDS_REVIEW,
        started=started,
        error=exc,
        actor=actor,
        action="sale.needs_review",
        summary=f"{sale.get_kind_display()} #{sale.pk}: answer lost, needs review (never resent)",
    )


def _client_or_failure(sale: Sale, *, started: float, actor):
    """The provider client, or the sale recorded as failed when none can be built (nothing sent)."""
    try:
        return provider_client(sale.campaign), None
    except ProviderError as exc:
        return None, _record_failure(sale, exc, started=started, actor=actor)
    except Exception:
        logger.exception("Could not build the provider client for campaign %s", sale.campaign_id)
        error = Misconfigured(what_to_check=[_("The campaign's stored credentials could not be read.")])
        return None, _record_failure(sale, error, started=started, actor=actor)


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
    layout (providers.md, purchase). Raises SaleRefused before any call when the campaign is not
    usable; provider outcomes are recorded on the sale's operation, not raised.
    """
    require_usable(campaign, Provider.LINA)
    if template.campaign_id != campaign.pk:
        raise SaleRefused(_("This template belongs to another campaign."))
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

    started = time.monotonic()
    client, failed = _client_or_failure(sale, started=started, actor=user)
    if failed is not None:
        return failed
    try:
        result = client.purchase(
            PurchaseRequest(
                amount=amount,
                template_hash=template.template_hash,
                email=email,
                layout=layout,
                from_name=from_name,
                for_name=for_name,
            )
        )
    except Exception as exc:
        return _record_failure(sale, exc, started=started, actor=user)

    code = normalize_code(result.code)
    return _record(
        sale,
        state=OperationState.SUCCEEDED,
        started=started,
        response_data=_ledger_safe(result.raw, result.code),
        operation_fields={
            "code_masked": mask_code(code),
            "code_digest": code_digest(code),
            "amount": result.amount,
        },
        sale_fields={
            "full_code": code,
            "code_masked": mask_code(code),
            "amount": result.amount,
            "qrcode_png_base64": result.qrcode_png_base64 or "",
            "layout_url": _web_link(result.layout_url),
        },
        actor=user,
        action="sale.gift_token_sold",
        summary=f"Gift token {mask_code(code)} sold for {result.amount} €",
    )


# --- Digital vouchers (Allsafe allocate) -------------------------------------------------------


@dataclass(frozen=True)
class AvailableItem:
    vendor: str
    value: Decimal
    remaining: int


@dataclass(frozen=True)
class AvailabilitySnapshot:
    items: tuple[AvailableItem, ...]
    fetched_at: datetime | None


def availability_refresh(*, campaign: Campaign, user) -> AvailabilitySnapshot:
    """Poll Allsafe now, through the stock service, so the allocate form and the stock pages read
    the same snapshots (and a refresh also updates alerts). Raises the provider's error."""
    if campaign.provider != Provider.ALLSAFE:
        raise SaleRefused(_("This campaign does not use that provider."))
    result = stock_poll(campaign_id=campaign.pk)
    if result.status == "skipped":
        raise SaleRefused(_("This campaign is switched off or outside its dates; nothing was asked."))
    if result.status == "failed" and result.error is not None:
        raise result.error
    # "busy": another poll of this campaign is running right now; show the latest we have.
    return availability_latest(campaign=campaign)


def availability_latest(*, campaign: Campaign) -> AvailabilitySnapshot:
    """The stock of the campaign's newest snapshot (stock polls and refreshes both write them)."""
    snapshot = (
        StockSnapshot.objects.filter(campaign=campaign)
        .order_by("-taken_at", "-id")
        .prefetch_related("levels")
        .first()
    )
    if snapshot is None:
        return AvailabilitySnapshot((), None)
    items = tuple(
        AvailableItem(level.vendor, level.value, level.remaining)
        for level in sorted(snapshot.levels.all(), key=lambda lv: (lv.vendor, lv.value))
    )
    return AvailabilitySnapshot(items, snapshot.taken_at)


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
    started = time.monotonic()
    client, failed = _client_or_failure(sale, started=started, actor=user)
    if failed is not None:
        return failed
    try:
        voucher = client.allocate(AllocateRequest(vendor=vendor, value=value, reference=request_token))
    except Exception as exc:
        return _record_failure(sale, exc, started=started, actor=user)

    code = str(voucher.code or "")
    fields = _jsonable(voucher.fields or {})
    value_received = voucher.value if voucher.value is not None else value
    return _record(
        sale,
        state=OperationState.SUCCEEDED,
        started=started,
        response_data=_ledger_safe(fields, code),
        operation_fields={
            "code_masked": mask_code(code) if code else "",
            "code_digest": code_digest(code) if code else "",
        },
        sale_fields={
            "full_code": code[:128],
            "code_masked": mask_code(code) if code else "",
            "voucher_fields": fields,
            "vendor": voucher.vendor or vendor,
            "amount": value_received,
        },
        actor=user,
        action="sale.voucher_allocated",
        summary=f"{voucher.vendor or vendor} voucher of {value_received} allocated",
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
        )
        template.delete()
