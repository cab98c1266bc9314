"""Bulk sales: an uploaded CSV checked line by line, then sold row by row by a Celery job.

Nothing is sold at upload: every line is stored with its messages and a fixed request token.
The job (:func:`bulk_sale_run`) takes a lease on the batch so one run works at a time, checks
for a cancel request before each row, and sells each valid row through
:func:`vouchers.services.sales.gift_token_sell` with the row's own request token, so a re-run,
a redelivered message or a restarted worker never sells a row twice.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import staff_text
from ..models import BulkSale, BulkSaleRow, Campaign, ProviderOperation, Sale, SaleTemplate
from ..models.campaigns import Provider
from ..models.ledger import OperationState
from ..models.sales import BulkSaleState
from ..output import bulk_csv as sales_csv
from ..providers.errors import AuthFailed, Misconfigured, ProviderUnavailable, RateLimited
from ..selectors.sales import (
    bulk_repeat_window_days,
    bulk_repeats,
    bulk_sale_is_stalled,
    bulk_sale_lease_seconds,
)
from ..staff_text import stored_errors, stored_sentence, told
from ..values import sale_rules as sales_rules
from ..values.parsing import parse_amount
from .audit import audit_record
from .pipeline import operation_transition
from .queueing import QueueUnavailable, TaskHook
from .refusals import Refusal
from .sales import gift_token_sell, new_request_token, require_usable

#: The Celery task that runs a batch (vouchers.tasks.sales fills it in).
RUN_TASK = TaskHook("bulk_sale_run_task")

# --- Bulk sales --------------------------------------------------------------------------------

#: Stored as a sentence (``BulkSale.note_message``): the batch page shows it in the reader's language.
QUEUE_FAILED_NOTE = gettext_lazy(
    "The job could not be queued: the task queue is unreachable. Nothing was sold. It starts by "
    "itself once the queue is back, or press Resume."
)


def bulk_row_validate(
    *, campaign: Campaign, templates: dict[str, SaleTemplate], line: sales_csv.CsvLine
) -> tuple[dict[str, Any], list[dict]]:
    """Check one uploaded line against the sale rules: (clean values, stored messages)."""
    cells = line.cells
    errors: list[dict] = []  # stored sentences: shown in the reader's language
    clean: dict[str, Any] = {}
    if line.extra_cells:
        errors.append(stored_sentence(gettext_lazy("This line has more values than the header has columns.")))
    try:
        clean["amount"] = sales_rules.check_amount(campaign, parse_amount(cells.get("amount", "")))
    except ValidationError as exc:
        errors.extend(stored_errors(exc))
    template = None
    name = cells.get("template", "")
    if not name:
        errors.append(stored_sentence(gettext_lazy("Name the template.")))
    else:
        template = templates.get(name.casefold())
        if template is None:
            known = ", ".join(sorted(t.name for t in templates.values())) or "—"
            errors.append(
                stored_sentence(
                    gettext_lazy("There is no active template “%(name)s” (templates: %(known)s)."),
                    name=name,
                    known=known,
                )
            )
    clean["template"] = template
    layout = None
    try:
        layout = sales_rules.parse_layout(cells.get("layout", ""))
        if template is not None:
            layout = sales_rules.check_layout(template, layout)
    except ValidationError as exc:
        errors.extend(stored_errors(exc))
    clean["layout"] = layout
    try:
        clean["from_name"], clean["for_name"] = sales_rules.check_names(
            layout, cells.get("from", ""), cells.get("for", "")
        )
    except ValidationError as exc:
        errors.extend(stored_errors(exc))
    try:
        clean["email"] = sales_rules.check_email(cells.get("email", ""))
    except ValidationError as exc:
        errors.extend(stored_errors(exc))
    if len(clean.get("email", "")) > 254:
        errors.append(stored_sentence(gettext_lazy("The e-mail address is too long.")))
    return clean, errors


def bulk_row_digest(campaign: Campaign, clean: dict[str, Any]) -> str:
    """What a valid row would sell, as one digest: the same row in a later file finds it."""
    content = [
        campaign.pk,
        str(clean["amount"].normalize()),
        clean["template"].pk,
        clean.get("layout"),
        clean.get("from_name", ""),
        clean.get("for_name", ""),
        (clean.get("email") or "").casefold(),
    ]
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()


def bulk_sale_create(*, campaign: Campaign, user, filename: str, data: bytes) -> BulkSale:
    """Read and check an uploaded file; store every line with its messages. Nothing is sold here.

    Raises sales_csv.BulkFileError when the file as a whole cannot be used, Refusal when
    the campaign cannot sell.
    """
    require_usable(campaign, Provider.LINA)
    deadline = sales_csv.parse_deadline()
    lines = sales_csv.parse_bulk_csv(data, deadline=deadline)
    templates = {t.name.casefold(): t for t in SaleTemplate.objects.filter(campaign=campaign, is_active=True)}
    rows = []
    for line in lines:
        sales_csv.check_deadline(deadline)  # one budget for reading and checking; nothing stored yet
        clean, errors = bulk_row_validate(campaign=campaign, templates=templates, line=line)
        rows.append(
            BulkSaleRow(
                line_number=line.line_number,
                raw={k: v[:300] for k, v in line.cells.items()},
                valid=not errors,
                errors=[e["text"] for e in errors],
                error_messages=errors,
                amount=clean.get("amount") if not errors else None,
                template=clean.get("template") if not errors else None,
                layout=clean.get("layout") if not errors else None,
                from_name=clean.get("from_name", "") if not errors else "",
                for_name=clean.get("for_name", "") if not errors else "",
                email=clean.get("email", "") if not errors else "",
                request_token=new_request_token(),
                content_digest=bulk_row_digest(campaign, clean) if not errors else "",
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
            message=stored_sentence(
                staff_text.AUDIT_BULK_UPLOADED, file=bulk.filename, valid=valid, rows=len(rows)
            ),
            data={"rows": len(rows), "valid": valid},
        )
    return bulk


def bulk_sale_start(*, bulk_sale: BulkSale, user, repeats_confirmed: int = 0) -> BulkSale:
    """Queue the job (once: a second click finds it queued already).

    Rows that repeat rows sold from an earlier file (selectors.sales.bulk_repeats) must be
    confirmed: ``repeats_confirmed`` is how many the person saw and accepted; more repeats than
    that (none confirmed, or more sold meanwhile) refuse the start.

    ``queue_failed`` on the returned batch is True when the broker could not be reached (see
    :func:`_send_run`); it is set once the transaction commits.
    """
    with transaction.atomic():
        bulk = BulkSale.objects.select_for_update().get(pk=bulk_sale.pk)
        if bulk.state != BulkSaleState.DRAFT:
            return bulk
        if not bulk.rows.filter(valid=True).exists():
            raise Refusal(_("The file has no valid rows to sell."))
        repeats = len(bulk_repeats(bulk))
        if repeats > max(0, repeats_confirmed):
            raise Refusal(
                ngettext(
                    "%(count)d row of this file was sold from an earlier file in the last %(days)d days. "
                    "Look at the flagged rows and confirm that they are to be sold again.",
                    "%(count)d rows of this file were sold from an earlier file in the last %(days)d days. "
                    "Look at the flagged rows and confirm that they are to be sold again.",
                    repeats,
                )
                % {"count": repeats, "days": bulk_repeat_window_days()},
                code="RepeatsNotConfirmed",
            )
        bulk.repeats_confirmed = repeats
        bulk.save(update_fields=["repeats_confirmed"])
        _queue(
            bulk,
            user=user,
            action="bulk_sale.started",
            summary=f"{bulk} started" + (f", {repeats} repeated rows confirmed" if repeats else ""),
            message=stored_sentence(
                staff_text.AUDIT_BULK_STARTED_REPEATS if repeats else staff_text.AUDIT_BULK_STARTED,
                batch=str(bulk),
                **({"repeats": repeats} if repeats else {}),
            ),
            data={"repeats_confirmed": repeats},
        )
    return bulk


B = BulkSaleState
#: The states a batch may move to, and from which (queued again: resumed after a stop or a stall).
BULK_ALLOWED_FROM = {
    B.QUEUED: (B.DRAFT, B.QUEUED, B.RUNNING, B.FINISHED),
    B.RUNNING: (B.QUEUED, B.RUNNING),
    B.FINISHED: (B.RUNNING,),
    B.CANCELLED: (B.DRAFT, B.RUNNING),
}


def _bulk_transition(bulk: BulkSale, *, to: str, only_owner: str | None = None, **fields) -> bool:
    """The one way a batch changes state: a conditional UPDATE from an allowed state (and, for a
    run, only while ``only_owner`` holds the lease). False when the batch had moved on."""
    batches = BulkSale.objects.filter(pk=bulk.pk, state__in=BULK_ALLOWED_FROM[to])
    if only_owner is not None:
        batches = batches.filter(lease_owner=only_owner)
    if not batches.update(state=to, **fields):
        return False
    bulk.state = to
    for name, value in fields.items():
        setattr(bulk, name, value)
    return True


def _queue(
    bulk: BulkSale, *, user, action: str, summary: str, message: dict, data: dict | None = None
) -> None:
    """Draft, stopped or stalled → queued (inside the caller's transaction, row locked), audited;
    the run is sent once it commits."""
    _lease_for_the_queue(bulk)
    _bulk_transition(
        bulk,
        to=B.QUEUED,
        note="",
        note_message={},
        finished_at=None,
        lease_owner=bulk.lease_owner,
        lease_until=bulk.lease_until,
    )
    audit_record(
        actor=user,
        action=action,
        campaign=bulk.campaign,
        obj=bulk,
        summary=summary,
        message=message,
        data=data,
    )
    transaction.on_commit(lambda: _send_run(bulk, actor=user))


def _lease_for_the_queue(bulk: BulkSale) -> None:
    """An ownerless lease while the message waits: no sweep sends it again before it runs out;
    the run that picks the message up takes the lease over."""
    bulk.lease_owner = ""
    bulk.lease_until = timezone.now() + timedelta(seconds=bulk_sale_lease_seconds())


def _send_run(bulk: BulkSale, *, actor=None) -> bool:
    """Queue the batch's run (after the commit that made it queued). When the broker cannot be
    reached nothing was queued and nothing sold: the batch stays queued with a lease that has
    already run out, so it is stalled at once — the page offers Resume and the next sweep sends
    it again. ``bulk.queue_failed`` tells the caller which happened."""
    try:
        RUN_TASK.send(bulk.pk)
    except QueueUnavailable:
        bulk.queue_failed = True
    else:
        bulk.queue_failed = False
        return True
    now = timezone.now()
    queue_failed = stored_sentence(QUEUE_FAILED_NOTE)
    with transaction.atomic():
        BulkSale.objects.filter(pk=bulk.pk, state=BulkSaleState.QUEUED, lease_owner="").update(
            lease_until=now, note=queue_failed["text"], note_message=queue_failed
        )
        audit_record(
            actor=actor,
            action="bulk_sale.queue_failed",
            campaign=bulk.campaign,
            obj=bulk,
            summary=f"{bulk} could not be queued (task queue unreachable); nothing sold",
            message=stored_sentence(staff_text.AUDIT_BULK_QUEUE_FAILED, batch=str(bulk)),
        )
    bulk.lease_until, bulk.note, bulk.note_message = now, queue_failed["text"], queue_failed
    return False


def bulk_sale_cancel(*, bulk_sale: BulkSale, user) -> BulkSale:
    """Ask the job to stop after the row it is selling now (a draft is cancelled at once)."""
    with transaction.atomic():
        bulk = BulkSale.objects.select_for_update().get(pk=bulk_sale.pk)
        if bulk.state in (BulkSaleState.FINISHED, BulkSaleState.CANCELLED):
            return bulk
        bulk.cancel_requested = True
        bulk.save(update_fields=["cancel_requested"])
        if bulk.state == B.DRAFT:  # nothing runs yet: cancelled at once
            _bulk_transition(bulk, to=B.CANCELLED, finished_at=timezone.now())
        audit_record(
            actor=user,
            action="bulk_sale.cancelled",
            campaign=bulk.campaign,
            obj=bulk,
            summary=f"{bulk} cancelled",
            message=stored_sentence(staff_text.AUDIT_BULK_CANCELLED, batch=str(bulk)),
        )
    return bulk


def bulk_sale_resume(*, bulk_sale: BulkSale, user) -> BulkSale:
    """Queue the job again after it stopped early or stalled. Rows already sold are never resold."""
    with transaction.atomic():
        bulk = BulkSale.objects.select_for_update().get(pk=bulk_sale.pk)
        resumable = bulk_sale_is_stalled(bulk) or (
            bulk.state == BulkSaleState.FINISHED
            and bulk.rows.filter(valid=True, sale__isnull=True).exists()
            and not bulk.cancel_requested
        )
        if not resumable:
            return bulk
        _queue(
            bulk,
            user=user,
            action="bulk_sale.resumed",
            summary=f"{bulk} resumed",
            message=stored_sentence(staff_text.AUDIT_BULK_RESUMED_BY_HAND, batch=str(bulk)),
        )
    return bulk


def bulk_sales_resume_stalled() -> int:
    """Scheduled: put stalled batches (worker died, message lost) back on the queue.

    Each one is given a fresh, ownerless lease before its task is sent, so the next sweep does
    not send it again while the message waits; the run that picks it up takes the lease over.
    Rows already claimed are never sold again (every row has its own request token).
    """
    resumed = 0
    active = BulkSale.objects.filter(state__in=[BulkSaleState.QUEUED, BulkSaleState.RUNNING])
    for pk in active.values_list("pk", flat=True):
        with transaction.atomic():
            bulk = BulkSale.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if bulk is None or not bulk_sale_is_stalled(bulk):
                continue
            _lease_for_the_queue(bulk)
            bulk.save(update_fields=["lease_owner", "lease_until"])
            audit_record(
                actor=None,
                action="bulk_sale.resumed",
                campaign=bulk.campaign,
                obj=bulk,
                summary=f"{bulk} had stalled and was put back on the queue",
                message=stored_sentence(staff_text.AUDIT_BULK_RESUMED, batch=str(bulk)),
            )
            transaction.on_commit(lambda bulk=bulk: _send_run(bulk))
        if getattr(bulk, "queue_failed", False) is False:
            resumed += 1
    return resumed


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
        _bulk_transition(
            bulk,
            to=B.RUNNING,
            lease_owner=owner,
            lease_until=now + timedelta(seconds=bulk_sale_lease_seconds()),
            started_at=bulk.started_at or now,
            note="",  # e.g. "could not be queued": it runs now
            note_message={},
        )
    return RunOutcome.WORKED, bulk


def _lease_renew(bulk: BulkSale, owner: str) -> bool:
    until = timezone.now() + timedelta(seconds=bulk_sale_lease_seconds())
    return bool(BulkSale.objects.filter(pk=bulk.pk, lease_owner=owner).update(lease_until=until))


def _bulk_finish(bulk: BulkSale, owner: str, *, state: str, note: dict | None = None) -> None:
    """``note`` (a stored sentence): why the batch stopped early, shown in the reader's language;
    ``BulkSale.note`` keeps its English text for the raw data."""
    if state == BulkSaleState.CANCELLED:
        plain, with_note = staff_text.AUDIT_BULK_CANCELLED, staff_text.AUDIT_BULK_CANCELLED_NOTE
    else:
        plain, with_note = staff_text.AUDIT_BULK_FINISHED, staff_text.AUDIT_BULK_FINISHED_NOTE
    if note:
        message = stored_sentence(with_note, batch=str(bulk), note=note)
    else:
        message = stored_sentence(plain, batch=str(bulk))
    with transaction.atomic():
        _bulk_transition(
            bulk,
            to=state,
            only_owner=owner,
            note=note["text"] if note else "",
            note_message=note or {},
            finished_at=timezone.now(),
            lease_owner="",
            lease_until=None,
        )
        audit_record(
            actor=None,
            action=f"bulk_sale.{state}",
            campaign=bulk.campaign,
            obj=bulk,
            summary=message["text"],
            message=message,
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
            stopped = _("The job stopped while this row was being sold.")
            if operation.state != OperationState.PENDING or not operation_transition(
                operation,
                to=OperationState.NEEDS_REVIEW,
                finished_at=timezone.now(),
                error_code="OutcomeUnknown",
                error_message=stopped,
                staff_text=told(stopped),
            ):
                continue
            interrupted_row = stored_sentence(staff_text.BULK_ROW_INTERRUPTED)
            BulkSaleRow.objects.filter(sale__operation=operation).update(
                message=interrupted_row["text"], message_stored=interrupted_row
            )
            audit_record(
                actor=None,
                action="sale.needs_review",
                campaign=bulk.campaign,
                obj=operation,
                summary=f"Bulk row interrupted, operation #{operation.pk} needs review (never resent)",
                message=stored_sentence(staff_text.AUDIT_BULK_ROW_INTERRUPTED, operation=operation.pk),
            )
            count += 1
    return count


# Errors that will hit every following row the same way: stop and let a person look first.
# Maintenance, the failed-call budget and a rejected session stop a job like their base classes.
_STOP_JOB_ERRORS = {cls.__name__ for cls in (AuthFailed, Misconfigured, RateLimited, ProviderUnavailable)} | {
    "ProviderMaintenance",
    "CallBudgetSpent",
    "SessionRejected",
}


def _row_message(sale: Sale) -> dict:
    """What happened to the row, stored as a code (``message_stored``; its "text" is English)."""
    operation = sale.operation
    if operation.state == OperationState.SUCCEEDED:
        return stored_sentence(staff_text.BULK_ROW_SOLD)
    if operation.state == OperationState.NEEDS_REVIEW:
        return stored_sentence(staff_text.BULK_ROW_NEEDS_REVIEW)
    if operation.staff_text:  # what staff were told about the call, the provider's words labelled
        return staff_text.told_stored(operation.staff_text)
    return stored_sentence(operation.error_message or OperationState(operation.state).label)


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
            _bulk_finish(
                bulk,
                owner,
                state=BulkSaleState.CANCELLED,
                note=stored_sentence(staff_text.BULK_NOTE_CANCELLED),
            )
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
                raise Refusal(gettext_lazy("The template of this row was deleted after the upload."))
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
        except Refusal as exc:
            refused = stored_sentence(exc.sentence)
            BulkSaleRow.objects.filter(pk=row.pk).update(message=refused["text"], message_stored=refused)
            _bulk_finish(bulk, owner, state=BulkSaleState.FINISHED, note=stored_sentence(exc.sentence))
            return RunOutcome.WORKED
        result = _row_message(sale)
        BulkSaleRow.objects.filter(pk=row.pk).update(message=result["text"], message_stored=result)
        if sale.operation.error_code in _STOP_JOB_ERRORS:
            _bulk_finish(
                bulk,
                owner,
                state=BulkSaleState.FINISHED,
                note=stored_sentence(
                    staff_text.BULK_NOTE_STOPPED,
                    line=row.line_number,
                    # What staff were told about the call (old rows: the ledger's plain text).
                    message=staff_text.told_stored(sale.operation.staff_text)
                    if sale.operation.staff_text
                    else sale.operation.error_message,
                ),
            )
            return RunOutcome.WORKED
        if not _lease_renew(bulk, owner):
            return RunOutcome.WORKED
