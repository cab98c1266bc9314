"""Bulk sales: an uploaded CSV checked line by line, then sold by a Celery job, a few rows at a time.

Nothing is sold at upload: every line is stored with its messages and a fixed request token.
The job (:func:`bulk_sale_run`) takes a lease on the batch so one run works at a time, keeps up
to SALES_BULK_CONCURRENCY rows in flight (threads of that one run, :func:`_sell_rows`), checks
for a cancel request before each row it starts, and sells each valid row through
:func:`vouchers.services.sales.gift_token_sell` with the row's own request token, so a re-run,
a redelivered message or a restarted worker never sells a row twice.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import json
import queue
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone, translation
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


def bulk_sale_concurrency() -> int:
    """How many rows of one batch are in flight at once (SALES_BULK_CONCURRENCY, at least 1)."""
    return max(1, int(settings.SALES_BULK_CONCURRENCY))


class _Stop:
    """Why a run stopped starting rows (the first reason wins; rows in flight still finish)."""

    DONE = "done"  # no unclaimed valid row left
    CANCELLED = "cancelled"
    LEASE_LOST = "lease_lost"  # another run took over; it carries on
    REFUSED = "refused"  # a Refusal before any call (e.g. the template was deleted)
    STOP_ERROR = "stop_error"  # an error that would hit every following row the same way
    CRASHED = "crashed"  # a seller raised: re-raised once the others finished (the lease runs out)

    def __init__(self, reason: str, result: _Result | None = None):
        self.reason = reason
        self.result = result


class _Result:
    """What became of one row handed to a seller: sold (any state), refused, not started, or crashed."""

    def __init__(
        self,
        row: BulkSaleRow,
        *,
        sale: Sale | None = None,
        refusal: Refusal | None = None,
        not_started: str = "",
    ):
        self.row = row
        self.sale = sale
        self.refusal = refusal
        #: A _Stop reason the seller found before starting the row ("" when it started it), or
        #: "skipped": the run had stopped already.
        self.not_started = not_started
        self.crash: BaseException | None = None

    def stop(self) -> _Stop | None:
        if self.crash is not None:
            return _Stop(_Stop.CRASHED, self)
        if self.not_started in (_Stop.CANCELLED, _Stop.LEASE_LOST):
            return _Stop(self.not_started, self)
        if self.refusal is not None:
            return _Stop(_Stop.REFUSED, self)
        if self.sale is not None and self.sale.operation.error_code in _STOP_JOB_ERRORS:
            return _Stop(_Stop.STOP_ERROR, self)
        return None


def _sell_row(bulk: BulkSale, owner: str, campaign: Campaign, row: BulkSaleRow) -> _Result:
    """Start one row unless the batch was cancelled or the lease lost (read right before the
    claim, so no row starts after either), then sell it through the money pipeline (claim →
    call → record, services/sales.py) with the row's own request token; the row's message is
    written with its own UPDATE."""
    lease_owner, cancel_requested = (
        BulkSale.objects.filter(pk=bulk.pk).values_list("lease_owner", "cancel_requested").get()
    )
    if lease_owner != owner:
        return _Result(row, not_started=_Stop.LEASE_LOST)
    if cancel_requested:
        return _Result(row, not_started=_Stop.CANCELLED)
    try:
        if row.template is None:
            raise Refusal(gettext_lazy("The template of this row was deleted after the upload."))
        sale = gift_token_sell(
            campaign=campaign,
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
        return _Result(row, refusal=exc)
    result = _row_message(sale)
    BulkSaleRow.objects.filter(pk=row.pk).update(message=result["text"], message_stored=result)
    return _Result(row, sale=sale)


class _Sellers:
    """Where the run hands rows to: ``start(row)``, results come back on ``done``.

    ``halt`` is set by the run once it stops: a row still waiting is then reported back as
    "skipped" without being started (it stays unclaimed, for a resume).
    """

    #: Rows the run may have handed out and not yet seen come back.
    capacity = 1

    def __init__(self, bulk: BulkSale, owner: str):
        self.bulk = bulk
        self.owner = owner
        self.done: queue.SimpleQueue[_Result] = queue.SimpleQueue()
        self.halt = threading.Event()

    def _handle(self, campaign: Campaign, row: BulkSaleRow) -> _Result:
        if self.halt.is_set():
            return _Result(row, not_started="skipped")
        try:
            return _sell_row(self.bulk, self.owner, campaign, row)
        except BaseException as exc:  # reported to the run, which stops and re-raises it
            result = _Result(row)
            result.crash = exc
            return result

    def start(self, row: BulkSaleRow) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _InlineSellers(_Sellers):
    """Sells each row in the calling thread at once: one row in flight.

    Used with SALES_BULK_CONCURRENCY=1, on SQLite (one writer at a time: threads would only
    wait for its lock), and when the run is called inside a transaction (tests, eager tasks):
    another connection could not see that transaction's uncommitted batch.
    """

    def start(self, row: BulkSaleRow) -> None:
        self.done.put(self._handle(self.bulk.campaign, row))


class _ThreadSellers(_Sellers):
    """``size`` threads that take the rows the run hands out, each on its own DB connection.

    At most ``size`` rows are therefore being sold at once. The run keeps up to ``size`` more
    rows waiting, so a thread that finished a row starts the next one at once instead of
    waiting for the run's thread (and the GIL) to hand it over. Each thread reads the cancel
    flag itself right before it starts a row, keeps its own copy of the campaign (a model
    instance is not shared between threads) and closes its connection when it ends, so a
    finished batch leaves no connection open in the worker process.
    """

    def __init__(self, bulk: BulkSale, owner: str, size: int):
        super().__init__(bulk, owner)
        self.size = size
        self.capacity = 2 * size
        self.todo: queue.SimpleQueue[BulkSaleRow | None] = queue.SimpleQueue()
        self.language = translation.get_language()  # row messages in the run's language
        self.threads = [
            threading.Thread(target=self._work, name=f"bulk-sale-{bulk.pk}-{n}", daemon=True)
            for n in range(size)
        ]
        for thread in self.threads:
            thread.start()

    def _work(self) -> None:
        campaign = copy.copy(self.bulk.campaign)
        try:
            with translation.override(self.language):
                while (row := self.todo.get()) is not None:
                    self.done.put(self._handle(campaign, row))
        finally:
            connection.close()

    def start(self, row: BulkSaleRow) -> None:
        self.todo.put(row)

    def close(self) -> None:
        """Let every thread finish the row it sells (it is recorded), then end it."""
        self.halt.set()
        for _thread in self.threads:
            self.todo.put(None)
        for thread in self.threads:
            thread.join()


def _sellers_for(bulk: BulkSale, owner: str) -> _Sellers:
    size = bulk_sale_concurrency()
    if size == 1 or connection.vendor == "sqlite" or connection.in_atomic_block:
        return _InlineSellers(bulk, owner)
    return _ThreadSellers(bulk, owner, size)


def _end_reason(bulk: BulkSale, owner: str) -> str:
    """No row left to start: done, unless the batch was cancelled or taken over meanwhile (as a
    run that sold row by row would have seen before looking for the next row)."""
    lease_owner, cancel_requested = (
        BulkSale.objects.filter(pk=bulk.pk).values_list("lease_owner", "cancel_requested").get()
    )
    if lease_owner != owner:
        return _Stop.LEASE_LOST
    return _Stop.CANCELLED if cancel_requested else _Stop.DONE


def _sell_rows(bulk: BulkSale, owner: str) -> _Stop:
    """Sell the batch's unclaimed valid rows in line order, at most SALES_BULK_CONCURRENCY at a
    time; return why it stopped once every row handed out has come back.

    Why threads inside the one run, not a Celery task per row: the run keeps the batch's single
    lease, so one run works on a batch at a time, the stalled sweep (lease ran out), Resume and
    the task's BUSY retry work exactly as before, and a cancel is one flag read before each row
    starts. Per-row tasks would each need the lease (or a lease per row), a shared semaphore,
    and a sweep that knows which of them died. The cost is one process's cores: the rows mostly
    wait on the provider, so a handful of threads is enough.

    Never twice: the run hands each row out once (line numbers only go up; rows with a sale are
    claimed already); a second run would need the lease; and the row's fixed request token makes
    the pipeline's claim return the earlier sale instead of calling the provider again. A row
    whose answer got lost is ``needs_review`` (services/sales.py), never sent again.
    """
    sellers = _sellers_for(bulk, owner)
    # While rows are in flight the run waits for one to come back; it renews the lease at least
    # this often, so a long provider timeout never lets the lease run out under a live run. Not
    # after every row: a lost lease is seen anyway by the read before each row, and the renewal
    # would be one more statement for every row.
    wait = max(1.0, bulk_sale_lease_seconds() / 3)
    renew_every = min(wait, 5.0)
    renewed = time.monotonic()
    handed_out = 0
    after_line = 0
    pending: collections.deque[BulkSaleRow] = collections.deque()
    stop: _Stop | None = None
    crash: BaseException | None = None
    try:
        while True:
            while stop is None and handed_out < sellers.capacity:
                if not pending:
                    pending.extend(
                        bulk.rows.filter(valid=True, sale__isnull=True, line_number__gt=after_line)
                        .select_related("template")
                        .order_by("line_number")[: sellers.capacity]
                    )
                if not pending:
                    if handed_out == 0:
                        stop = _Stop(_end_reason(bulk, owner))
                    break
                row = pending.popleft()
                after_line = row.line_number
                sellers.start(row)
                handed_out += 1
            if handed_out == 0:
                return stop
            try:
                result = sellers.done.get(timeout=wait)
            except queue.Empty:
                result = None
            if result is not None:
                handed_out -= 1
                crash = crash or result.crash
                stop = stop or result.stop()
                if stop is not None:
                    sellers.halt.set()  # rows still waiting come back unstarted
            if time.monotonic() - renewed >= renew_every:
                renewed = time.monotonic()
                if not _lease_renew(bulk, owner) and stop is None:
                    stop = _Stop(_Stop.LEASE_LOST)
                    sellers.halt.set()
    finally:
        sellers.close()
        if crash is not None:
            raise crash


def bulk_sale_run(*, bulk_sale_id: int) -> str:
    """Work through a bulk sale's valid rows, one sale per row, at most once per row.

    Safe to run any number of times and after a crash: a lease lets one run work at a time;
    rows already claimed are skipped (and those a dead run left pending go to review); each
    row's fixed request token stops a second sale even if two runs ever met on one row.
    Up to SALES_BULK_CONCURRENCY rows are in flight at once (:func:`_sell_rows`). Checks for a
    cancel request before each row it starts, so cancelling starts no new row; the rows in
    flight then finish and are recorded. Returns a :class:`RunOutcome` value.
    """
    owner = uuid.uuid4().hex
    outcome, bulk = _lease_take(bulk_sale_id, owner)
    if bulk is None:
        return outcome
    _mark_interrupted_rows(bulk)
    stop = _sell_rows(bulk, owner)
    if stop.reason == _Stop.LEASE_LOST:
        return RunOutcome.WORKED  # our lease ran out and another run took over; it carries on
    if stop.reason == _Stop.CANCELLED:
        _bulk_finish(
            bulk, owner, state=BulkSaleState.CANCELLED, note=stored_sentence(staff_text.BULK_NOTE_CANCELLED)
        )
    elif stop.reason == _Stop.REFUSED:
        exc = stop.result.refusal
        _bulk_finish(bulk, owner, state=BulkSaleState.FINISHED, note=stored_sentence(exc.sentence))
    elif stop.reason == _Stop.STOP_ERROR:
        row, sale = stop.result.row, stop.result.sale
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
    else:
        _bulk_finish(bulk, owner, state=BulkSaleState.FINISHED)
    return RunOutcome.WORKED
