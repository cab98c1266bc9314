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
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import sales_csv, sales_rules
from ..codes import code_digest, format_code, mask_code, normalize_code
from ..models import BulkSale, BulkSaleRow, Campaign, ProviderOperation, Sale, SaleTemplate
from ..models.campaigns import Provider
from ..models.ledger import OperationKind, OperationState
from ..models.sales import BulkSaleState, SaleKind
from ..providers.base import AllocateRequest, PurchaseRequest
from ..providers.errors import (
    AuthFailed,
    Misconfigured,
    OutcomeUnknown,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from .audit import audit_record
from .ledger import operation_claim, operation_log, operation_record
from .providers import provider_client

logger = logging.getLogger(__name__)


class SaleRefused(Exception):
    """Our own "no" before any provider call (campaign not live, wrong provider, reused token)."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def new_request_token() -> str:
    """A one-time token for a sell form or a bulk row; the ledger keeps it unique."""
    return uuid.uuid4().hex


def _require_usable(campaign: Campaign, provider: str) -> None:
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
    _require_usable(campaign, Provider.LINA)
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
            "layout_url": (result.layout_url or "")[:500],
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
    """Ask Allsafe what can be handed out now; logged as a read in the ledger. Raises ProviderError."""
    if campaign.provider != Provider.ALLSAFE:
        raise SaleRefused(_("This campaign does not use that provider."))
    started = time.monotonic()
    try:
        availability = provider_client(campaign).availability()
    except ProviderError as exc:
        operation_log(
            campaign=campaign,
            user=user,
            kind=OperationKind.POLL,
            started=started,
            request_data={"source": "allocate form"},
            error=exc,
        )
        raise
    items = [
        {"vendor": item.vendor, "value": str(item.value), "remaining": int(item.remaining)}
        for item in availability.items
    ]
    operation = operation_log(
        campaign=campaign,
        user=user,
        kind=OperationKind.POLL,
        started=started,
        request_data={"source": "allocate form"},
        response_data={"items": items},
    )
    return _snapshot(items, operation.created_at)


def _snapshot(items: list[dict], when) -> AvailabilitySnapshot:
    parsed = []
    for item in items:
        try:
            parsed.append(
                AvailableItem(str(item["vendor"]), Decimal(str(item["value"])), int(item["remaining"]))
            )
        except (KeyError, ValueError, ArithmeticError, TypeError):
            continue
    parsed.sort(key=lambda i: (i.vendor.lower(), i.value))
    return AvailabilitySnapshot(tuple(parsed), when)


def availability_latest(*, campaign: Campaign) -> AvailabilitySnapshot:
    """The last availability fetched successfully for this campaign (from the ledger)."""
    operation = (
        ProviderOperation.objects.filter(
            campaign=campaign, kind=OperationKind.POLL, state=OperationState.SUCCEEDED
        )
        .filter(response_data__has_key="items")
        .order_by("-created_at", "-id")
        .only("response_data", "created_at")
        .first()
    )
    if operation is None:
        return AvailabilitySnapshot((), None)
    return _snapshot(operation.response_data.get("items") or [], operation.created_at)


def digital_voucher_allocate(
    *, campaign: Campaign, user, request_token: str, vendor: str, value: Decimal
) -> Sale:
    """Allocate one Allsafe voucher, once per ``request_token``; returns the sale (any state).

    Allsafe has no idempotency key (providers.md), so a lost answer may or may not have used a
    voucher: it is left ``needs_review`` and never sent again. The request token is sent as the
    reference, so a person can ask Allsafe about exactly this request.
    """
    _require_usable(campaign, Provider.ALLSAFE)
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


# --- Bulk sales --------------------------------------------------------------------------------


def bulk_sale_lease_seconds() -> int:
    # Longer than one row can take (the provider's read timeout is at most 120 s).
    return int(getattr(settings, "SALES_BULK_LEASE_SECONDS", 300))


def bulk_row_validate(
    *, campaign: Campaign, templates: dict[str, SaleTemplate], line: sales_csv.CsvLine
) -> tuple[dict[str, Any], list[str]]:
    """Check one uploaded line against the sale rules: (clean values, messages)."""
    cells = line.cells
    errors: list[str] = []
    clean: dict[str, Any] = {}
    if line.extra_cells:
        errors.append(_("This line has more values than the header has columns."))
    try:
        clean["amount"] = sales_rules.check_amount(
            campaign, sales_rules.parse_amount(cells.get("amount", ""))
        )
    except ValidationError as exc:
        errors.extend(exc.messages)
    template = None
    name = cells.get("template", "")
    if not name:
        errors.append(_("Name the template."))
    else:
        template = templates.get(name.casefold())
        if template is None:
            known = ", ".join(sorted(t.name for t in templates.values())) or "—"
            errors.append(
                _("There is no active template “%(name)s” (templates: %(known)s).")
                % {"name": name, "known": known}
            )
    clean["template"] = template
    layout = None
    try:
        layout = sales_rules.parse_layout(cells.get("layout", ""))
        if template is not None:
            layout = sales_rules.check_layout(template, layout)
    except ValidationError as exc:
        errors.extend(exc.messages)
    clean["layout"] = layout
    try:
        clean["from_name"], clean["for_name"] = sales_rules.check_names(
            layout, cells.get("from", ""), cells.get("for", "")
        )
    except ValidationError as exc:
        errors.extend(exc.messages)
    try:
        clean["email"] = sales_rules.check_email(cells.get("email", ""))
    except ValidationError as exc:
        errors.extend(exc.messages)
    if len(clean.get("email", "")) > 254:
        errors.append(_("The e-mail address is too long."))
    return clean, errors


def bulk_sale_create(*, campaign: Campaign, user, filename: str, data: bytes) -> BulkSale:
    """Read and check an uploaded file; store every line with its messages. Nothing is sold here.

    Raises sales_csv.BulkFileError when the file as a whole cannot be used, SaleRefused when
    the campaign cannot sell.
    """
    _require_usable(campaign, Provider.LINA)
    lines = sales_csv.parse_bulk_csv(data)
    templates = {t.name.casefold(): t for t in SaleTemplate.objects.filter(campaign=campaign, is_active=True)}
    rows = []
    for line in lines:
        clean, errors = bulk_row_validate(campaign=campaign, templates=templates, line=line)
        rows.append(
            BulkSaleRow(
                line_number=line.line_number,
                raw={k: v[:300] for k, v in line.cells.items()},
                valid=not errors,
                errors=errors,
                amount=clean.get("amount") if not errors else None,
                template=clean.get("template") if not errors else None,
                layout=clean.get("layout") if not errors else None,
                from_name=clean.get("from_name", "") if not errors else "",
                for_name=clean.get("for_name", "") if not errors else "",
                email=clean.get("email", "") if not errors else "",
                request_token=new_request_token(),
            )
        )
    with transaction.atomic():
        bulk = BulkSale.objects.create(campaign=campaign, created_by=user, filename=(filename or "")[:200])
        for row in rows:
            row.bulk_sale = bulk
        BulkSaleRow.objects.bulk_create(rows, batch_size=500)
        valid = sum(1 for r in rows if r.valid)
        audit_record(
            actor=user,
            action="bulk_sale.uploaded",
            campaign=campaign,
            obj=bulk,
            summary=f"Bulk sale file {bulk.filename} uploaded: {valid} valid of {len(rows)} rows",
            data={"rows": len(rows), "valid": valid},
        )
    return bulk


def bulk_sale_start(*, bulk_sale: BulkSale, user) -> BulkSale:
    """Queue the job (once: a second click finds it queued already)."""
    from ..tasks.sales import bulk_sale_run_task

    with transaction.atomic():
        bulk = BulkSale.objects.select_for_update().get(pk=bulk_sale.pk)
        if bulk.state != BulkSaleState.DRAFT:
            return bulk
        if not bulk.rows.filter(valid=True).exists():
            raise SaleRefused(_("The file has no valid rows to sell."))
        bulk.state = BulkSaleState.QUEUED
        bulk.save(update_fields=["state"])
        audit_record(
            actor=user,
            action="bulk_sale.started",
            campaign=bulk.campaign,
            obj=bulk,
            summary=f"{bulk} started",
        )
        transaction.on_commit(lambda: bulk_sale_run_task.delay(bulk.pk))
    return bulk


def bulk_sale_cancel(*, bulk_sale: BulkSale, user) -> BulkSale:
    """Ask the job to stop after the row it is selling now (a draft is cancelled at once)."""
    with transaction.atomic():
        bulk = BulkSale.objects.select_for_update().get(pk=bulk_sale.pk)
        if bulk.state in (BulkSaleState.FINISHED, BulkSaleState.CANCELLED):
            return bulk
        bulk.cancel_requested = True
        update = ["cancel_requested"]
        if bulk.state == BulkSaleState.DRAFT:
            bulk.state = BulkSaleState.CANCELLED
            bulk.finished_at = timezone.now()
            update += ["state", "finished_at"]
        bulk.save(update_fields=update)
        audit_record(
            actor=user,
            action="bulk_sale.cancelled",
            campaign=bulk.campaign,
            obj=bulk,
            summary=f"{bulk} cancelled",
        )
    return bulk


def bulk_sale_is_stalled(bulk: BulkSale, now: datetime | None = None) -> bool:
    """Queued or running, but nobody holds the lease: the worker died or the message was lost."""
    now = now or timezone.now()
    if not bulk.is_active:
        return False
    if bulk.state == BulkSaleState.QUEUED:
        return bulk.lease_until is None and bulk.created_at < now - timedelta(
            seconds=bulk_sale_lease_seconds()
        )
    return bulk.lease_until is None or bulk.lease_until < now


def bulk_sale_resume(*, bulk_sale: BulkSale, user) -> BulkSale:
    """Queue the job again after it stopped early or stalled. Rows already sold are never resold."""
    from ..tasks.sales import bulk_sale_run_task

    with transaction.atomic():
        bulk = BulkSale.objects.select_for_update().get(pk=bulk_sale.pk)
        resumable = bulk_sale_is_stalled(bulk) or (
            bulk.state == BulkSaleState.FINISHED
            and bulk.rows.filter(valid=True, sale__isnull=True).exists()
            and not bulk.cancel_requested
        )
        if not resumable:
            return bulk
        bulk.state = BulkSaleState.QUEUED
        bulk.note = ""
        bulk.finished_at = None
        bulk.save(update_fields=["state", "note", "finished_at"])
        audit_record(
            actor=user,
            action="bulk_sale.resumed",
            campaign=bulk.campaign,
            obj=bulk,
            summary=f"{bulk} resumed",
        )
        transaction.on_commit(lambda: bulk_sale_run_task.delay(bulk.pk))
    return bulk


class RunOutcome:
    """What one call of :func:`bulk_sale_run` did (the task decides from it whether to retry)."""

    WORKED = "worked"  # held the lease and worked until finished, cancelled, stopped or lease lost
    BUSY = "busy"  # another run holds a live lease: try again after it could have run out
    IDLE = "idle"  # nothing to do: draft, finished or cancelled


def _lease_take(bulk_sale_id: int, owner: str) -> tuple[str, BulkSale | None]:
    with transaction.atomic():
        bulk = (
            BulkSale.objects.select_for_update(of=("self",))
            .select_related("campaign", "created_by")
            .filter(pk=bulk_sale_id)
            .first()
        )
        if bulk is None or bulk.state not in (BulkSaleState.QUEUED, BulkSaleState.RUNNING):
            return RunOutcome.IDLE, None
        now = timezone.now()
        if bulk.lease_owner and bulk.lease_until and bulk.lease_until > now:
            return RunOutcome.BUSY, None  # another run is alive (e.g. a redelivered message)
        bulk.lease_owner = owner
        bulk.lease_until = now + timedelta(seconds=bulk_sale_lease_seconds())
        bulk.state = BulkSaleState.RUNNING
        bulk.started_at = bulk.started_at or now
        bulk.save(update_fields=["lease_owner", "lease_until", "state", "started_at"])
    return RunOutcome.WORKED, bulk


def _lease_renew(bulk: BulkSale, owner: str) -> bool:
    until = timezone.now() + timedelta(seconds=bulk_sale_lease_seconds())
    return bool(BulkSale.objects.filter(pk=bulk.pk, lease_owner=owner).update(lease_until=until))


def _bulk_finish(bulk: BulkSale, owner: str, *, state: str, note: str = "") -> None:
    with transaction.atomic():
        BulkSale.objects.filter(pk=bulk.pk, lease_owner=owner).update(
            state=state, note=note, finished_at=timezone.now(), lease_owner="", lease_until=None
        )
        audit_record(
            actor=None,
            action=f"bulk_sale.{state}",
            campaign=bulk.campaign,
            obj=bulk,
            summary=f"{bulk} {state}" + (f": {note}" if note else ""),
        )


def _mark_interrupted_rows(bulk: BulkSale) -> int:
    """Rows claimed by an earlier run that never recorded an answer: that run died mid-call.

    Whether the provider sold the token is unknown, so the operation goes to review; it is
    never sent again (the row's request token would find it anyway).
    """
    interrupted = ProviderOperation.objects.filter(
        sale__bulk_row__bulk_sale=bulk, state=OperationState.PENDING
    ).values_list("pk", flat=True)
    count = 0
    for pk in list(interrupted):
        with transaction.atomic():
            operation = ProviderOperation.objects.select_for_update().get(pk=pk)
            if operation.state != OperationState.PENDING:
                continue
            operation_record(
                operation=operation,
                state=OperationState.NEEDS_REVIEW,
                error=OutcomeUnknown(_("The job stopped while this row was being sold.")),
            )
            BulkSaleRow.objects.filter(sale__operation=operation).update(
                message=_("The job stopped during this sale; it needs review and is not sold again.")
            )
            audit_record(
                actor=None,
                action="sale.needs_review",
                campaign=bulk.campaign,
                obj=operation,
                summary=f"Bulk row interrupted, operation #{operation.pk} needs review (never resent)",
            )
            count += 1
    return count


# Errors that will hit every following row the same way: stop and let a person look first.
_STOP_JOB_ERRORS = {cls.__name__ for cls in (AuthFailed, Misconfigured, RateLimited, ProviderUnavailable)}


def _row_message(sale: Sale) -> str:
    operation = sale.operation
    if operation.state == OperationState.SUCCEEDED:
        return _("Sold.")
    if operation.state == OperationState.NEEDS_REVIEW:
        return _("The provider's answer was lost; needs review, not sent again.")
    return operation.error_message or operation.get_state_display()


def bulk_sale_run(*, bulk_sale_id: int) -> str:
    """Work through a bulk sale's valid rows, one sale per row, at most once per row.

    Safe to run any number of times and after a crash: a lease lets one run work at a time;
    rows already claimed are skipped (and those a dead run left pending go to review); each
    row's fixed request token stops a second sale even if two runs ever met on one row.
    Checks for a cancel request before each row, so cancelling stops after the current row.
    Returns a :class:`RunOutcome` value.
    """
    owner = uuid.uuid4().hex
    outcome, bulk = _lease_take(bulk_sale_id, owner)
    if bulk is None:
        return outcome
    _mark_interrupted_rows(bulk)
    while True:
        current = BulkSale.objects.only("cancel_requested", "lease_owner").get(pk=bulk.pk)
        if current.lease_owner != owner:
            return RunOutcome.WORKED  # our lease ran out and another run took over; it carries on
        if current.cancel_requested:
            _bulk_finish(bulk, owner, state=BulkSaleState.CANCELLED, note=_("Cancelled by a person."))
            return RunOutcome.WORKED
        row = (
            bulk.rows.filter(valid=True, sale__isnull=True)
            .select_related("template")
            .order_by("line_number")
            .first()
        )
        if row is None:
            _bulk_finish(bulk, owner, state=BulkSaleState.FINISHED)
            return RunOutcome.WORKED
        try:
            if row.template is None:
                raise SaleRefused(_("The template of this row was deleted after the upload."))
            sale = gift_token_sell(
                campaign=bulk.campaign,
                user=bulk.created_by,
                request_token=row.request_token,
                amount=row.amount,
                template=row.template,
                layout=row.layout,
                from_name=row.from_name,
                for_name=row.for_name,
                email=row.email,
                bulk_row=row,
            )
        except SaleRefused as exc:
            BulkSaleRow.objects.filter(pk=row.pk).update(message=exc.message)
            _bulk_finish(bulk, owner, state=BulkSaleState.FINISHED, note=exc.message)
            return RunOutcome.WORKED
        BulkSaleRow.objects.filter(pk=row.pk).update(message=_row_message(sale))
        if sale.operation.error_code in _STOP_JOB_ERRORS:
            _bulk_finish(
                bulk,
                owner,
                state=BulkSaleState.FINISHED,
                note=_("Stopped at line %(line)d: %(message)s Fix this, then resume to sell the rest.")
                % {"line": row.line_number, "message": sale.operation.error_message},
            )
            return RunOutcome.WORKED
        if not _lease_renew(bulk, owner):
            return RunOutcome.WORKED


def bulk_sale_progress(*, bulk_sale: BulkSale) -> dict[str, Any]:
    """Counts for the progress bar, in one query."""
    counts = bulk_sale.rows.aggregate(
        total=Count("pk"),
        valid_rows=Count("pk", filter=Q(valid=True)),
        done=Count("pk", filter=Q(valid=True, sale__isnull=False) & ~Q(sale__operation__state="pending")),
        succeeded=Count("pk", filter=Q(sale__operation__state=OperationState.SUCCEEDED)),
        failed=Count("pk", filter=Q(sale__operation__state=OperationState.FAILED)),
        review=Count(
            "pk",
            filter=Q(sale__operation__state__in=[OperationState.NEEDS_REVIEW, OperationState.UNKNOWN]),
        ),
    )
    valid = counts.pop("valid_rows") or 0
    counts["valid"] = valid
    counts["invalid"] = (counts["total"] or 0) - valid
    counts["percent"] = round(100 * counts["done"] / valid) if valid else 100
    counts["state"] = bulk_sale.state
    counts["state_label"] = str(bulk_sale.get_state_display())
    counts["finished"] = not bulk_sale.is_active and bulk_sale.state != BulkSaleState.DRAFT
    counts["note"] = bulk_sale.note
    counts["stalled"] = bulk_sale_is_stalled(bulk_sale)
    return counts
