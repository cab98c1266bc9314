"""The one provider-call pipeline: client → claim → call → classify → record (ARCHITECTURE.md).

1. **Client**: built by :func:`provider_call` through ``services.providers.provider_client`` (the
   one place that decrypts credentials), unless the caller built it to refuse before claiming.
2. **Claim** (money-moving calls), :func:`operation_claim`: one short transaction, optionally
   under a per-key lock, that refuses (keeping a failed row for the attempt) or inserts the
   ``pending`` row with the request token in its unique column. The token is looked up once
   (:func:`operation_replay`); a race for the same token is settled by the unique column.
3. **Call** with no transaction or lock held, and **classify**: a definite "no" or a call never
   sent is ``failed``; an unknown or unexpected outcome of a money-moving call is ``unknown``
   (redeem: reconciled) or ``needs_review`` (a person settles it), never retried.
4. **Record**, :func:`operation_finish`: state, answer, what staff were told and the audit row in
   one transaction. Reads (check, poll) write one finished row with :func:`operation_log`.

Every state change of a ledger row goes through :func:`operation_transition`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.db.models import sql
from django.utils import timezone
from django.utils.translation import gettext_lazy

from .. import staff_text
from ..models import Campaign, ProviderOperation, ReconcileTicket
from ..models.ledger import MONEY_MOVING, OperationKind, OperationState
from ..providers.errors import OutcomeUnknown, ProviderError
from ..security.redaction import ledger_safe
from ..values.codes import code_digest, mask_code
from .audit import audit_record
from .locking import lock_key
from .providers import provider_client
from .refusals import Refusal

logger = logging.getLogger(__name__)

S = OperationState
#: The states a row may move to, and from which.
ALLOWED_FROM = {
    S.SUCCEEDED: (S.PENDING, S.UNKNOWN, S.NEEDS_REVIEW),
    S.FAILED: (S.PENDING, S.UNKNOWN, S.NEEDS_REVIEW),
    S.UNKNOWN: (S.PENDING,),
    S.NEEDS_REVIEW: (S.PENDING, S.UNKNOWN),
}


class CallCrashed(ProviderError):
    """Something other than a provider error broke a call that moves no money. Logged in full."""

    default_message = gettext_lazy(
        "The provider call failed unexpectedly; the details are in the server log."
    )


def unknown_state(kind: str) -> str:
    """Where a money-moving call whose outcome is not known goes: only redeems can be reconciled."""
    return S.UNKNOWN if kind == OperationKind.REDEEM else S.NEEDS_REVIEW


def operation_transition(
    operation: ProviderOperation, *, to: str, only_from: tuple[str, ...] = (), **fields: Any
) -> bool:
    """Move ``operation`` to ``to`` if its state allows it (and is one of ``only_from``, if given);
    False when it had moved on already.

    A conditional UPDATE, so two writers can never both move the same row. Leaving the open
    states for good (anything but ``unknown``) drops the row's reconcile ticket: the full code
    is not needed any more.
    """
    allowed = [state for state in ALLOWED_FROM[to] if not only_from or state in only_from]
    rows = ProviderOperation.objects.filter(pk=operation.pk, state__in=allowed)
    drop_ticket = to != S.UNKNOWN
    if drop_ticket and connections[rows.db].vendor == "postgresql":
        changed, drop_ticket = _update_dropping_ticket(rows, {"state": to, **fields}), False
    else:
        changed = rows.update(state=to, **fields)
    if not changed:
        return False
    operation.state = to
    for name, value in fields.items():
        setattr(operation, name, value)
    if drop_ticket:
        ReconcileTicket.objects.filter(operation_id=operation.pk).delete()
    return True


def _update_dropping_ticket(rows, values: dict[str, Any]) -> int:
    """``rows.update(**values)`` and the moved row's reconcile ticket deleted, in one statement
    (PostgreSQL: a data-modifying CTE) instead of two round trips; the number of rows moved.

    The UPDATE is Django's own (its SQL and parameters, so field conversion is unchanged); the
    DELETE takes only rows the UPDATE moved, so a row that had moved on keeps its ticket
    exactly as before.
    """
    query = rows.query.chain(sql.UpdateQuery)
    query.add_update_values(values)
    update_sql, params = query.get_compiler(rows.db).as_sql()
    db = connections[rows.db]
    quote = db.ops.quote_name
    ticket, pk = quote(ReconcileTicket._meta.db_table), quote(ProviderOperation._meta.pk.column)
    statement = (
        f"WITH moved AS ({update_sql} RETURNING {pk} AS moved_id), "  # noqa: S608 (see below)
        f"dropped AS (DELETE FROM {ticket} WHERE {quote('operation_id')} IN (SELECT moved_id FROM moved)) "
        "SELECT count(*) FROM moved"
    )
    with db.cursor() as cursor:
        # Only Django's own SQL and quoted table/column names are put together; values are parameters.
        cursor.execute(statement, params)
        return cursor.fetchone()[0]


# --- Claim ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    operation: ProviderOperation
    #: False when the request token was used before: show the earlier operation, call nothing.
    created: bool


def operation_replay(request_token: str | None) -> ProviderOperation | None:
    """The operation a one-time request token already stands for (double click, reload, re-run)."""
    return ProviderOperation.objects.filter(request_token=request_token).first() if request_token else None


def _user(user):
    return user if getattr(user, "is_authenticated", False) else None


def code_fields(code: str) -> dict[str, str]:
    """What the ledger keeps of a code: masked for people, a keyed digest to find it again."""
    return {"code_masked": mask_code(code) if code else "", "code_digest": code_digest(code) if code else ""}


def operation_insert(**fields: Any) -> ProviderOperation:
    """The claim's insert, after its checks (the seam the concurrency tests put a gap into)."""
    return ProviderOperation.objects.create(**fields)


def operation_claim(
    *,
    campaign: Campaign,
    user,
    kind: str,
    request_token: str | None = None,
    code: str = "",
    amount: Decimal | None = None,
    request_data: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    lock: tuple | None = None,
    refuse: Callable[[], tuple[str, object] | None] | None = None,
    on_claim: Callable[[ProviderOperation], None] | None = None,
) -> Claim:
    """Insert the ``pending`` row (``extra``: more fields; ``on_claim``: side rows) in one short
    transaction under ``lock`` (``lock_key`` arguments). ``refuse()`` may return ``(code, message)``:
    a failed row records the attempt and :class:`Refusal` is raised after the commit, as for an
    open redeem on the same code (the partial unique constraint). A used token: ``created=False``.
    """
    row = {"campaign": campaign, "user": _user(user), "kind": kind, "amount": amount, **code_fields(code)}
    row["request_token"] = request_token or None
    refusal = None
    try:
        # One transaction and no savepoint: an IntegrityError rolls all of it back, which loses
        # nothing (the lock and ``refuse()`` only read) and is settled below in a new one.
        with transaction.atomic():
            if lock:
                lock_key(*lock)
            refusal = refuse() if refuse else None
            if refusal is None:
                operation = operation_insert(
                    **row, state=S.PENDING, request_data=request_data or {}, **(extra or {})
                )
                if on_claim:
                    on_claim(operation)
                return Claim(operation, created=True)
            refused = _refusal_insert(row, refusal)
    except IntegrityError:
        # The token's row was committed meanwhile (a resubmit: show it), or, where the lock is
        # a no-op (e.g. SQLite), an open redeem of the same code won the partial unique constraint.
        existing = operation_replay(request_token)
        if existing is not None:
            return Claim(existing, created=False)
        if refusal is not None:  # the refused row itself broke, not for its token: a real error
            raise
        refusal = ("CodeBusy", staff_text.CODE_BUSY)
        try:
            with transaction.atomic():
                refused = _refusal_insert(row, refusal)
        except IntegrityError:
            # The same request token was recorded meanwhile: that row answers this resubmit.
            existing = operation_replay(request_token)
            if existing is None:
                raise
            return Claim(existing, created=False)
    # Committed: the refused attempt stays in the ledger; a resubmit shows this refusal again.
    raise Refusal(refusal[1], code=refusal[0], operation=refused)


def _refusal_insert(row: dict[str, Any], refusal: tuple[str, object]) -> ProviderOperation:
    """The failed row that records a refused attempt (nothing was sent)."""
    error_code, message = refusal
    return ProviderOperation.objects.create(
        **row,
        state=S.FAILED,
        error_code=error_code,
        error_message=str(message),
        staff_text=staff_text.told(message),
        finished_at=timezone.now(),
        duration_ms=0,
    )


# --- Call and classify ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a call came to: ``state`` as the ledger will record it, the result or the error."""

    state: str
    started: float
    result: Any = None
    error: ProviderError | None = None


def provider_call(
    *,
    kind: str,
    call: Callable[[Any], Any],
    campaign: Campaign | None = None,
    client: Any = None,
    crashed: type[ProviderError] = CallCrashed,
    read_retries: int | None = None,
) -> Outcome:
    """Run ``call(client)`` with no transaction held and classify the outcome (module docstring).
    The client is built from ``campaign`` unless given (none: nothing sent, ``failed``); ``crashed``
    is the error recorded when a read breaks on something other than a provider error;
    ``read_retries`` goes to the client built here (ProviderConfig.read_retries)."""
    started = time.monotonic()
    if client is None:
        try:
            client = provider_client(campaign, read_retries=read_retries)
        except Exception as exc:  # nothing was sent: a failure, whatever broke
            if not isinstance(exc, ProviderError):
                logger.exception("Could not build the provider client for campaign %s", campaign.pk)
                exc = crashed(detail=type(exc).__name__)
            return Outcome(S.FAILED, started, error=exc)
    try:
        return Outcome(S.SUCCEEDED, started, result=call(client))
    except OutcomeUnknown as error:
        return Outcome(unknown_state(kind) if kind in MONEY_MOVING else S.FAILED, started, error=error)
    except ProviderError as error:
        # A definite answer or a call that was not sent (client contract): nothing changed.
        return Outcome(S.FAILED, started, error=error)
    except Exception as exc:
        logger.exception("%s call ended with an unexpected error", kind)
        if kind in MONEY_MOVING:
            # The request may have gone out: the outcome is unknown, never "failed", never resent.
            return Outcome(unknown_state(kind), started, error=OutcomeUnknown(detail=type(exc).__name__))
        return Outcome(S.FAILED, started, error=crashed(detail=type(exc).__name__))


# --- Record --------------------------------------------------------------------------------------


def _finished(started: float | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"finished_at": timezone.now()}
    if started is not None:
        fields["duration_ms"] = max(0, int((time.monotonic() - started) * 1000))
    return fields


def _error_fields(error: ProviderError | None, *, kind: str) -> dict[str, Any]:
    """The error columns, what staff were told, and the provider's answer to a definite "no"."""
    if error is None:
        return {}
    told = staff_text.told_staff(error, money_moving=kind in MONEY_MOVING)
    fields = {"error_code": error.code, "error_message": error.message, "staff_text": told}
    if isinstance(error.raw, dict | list):
        fields["response_data"] = ledger_safe(error.raw)
    return fields


def operation_finish(
    *,
    operation_id: int | None = None,
    outcome: Outcome,
    response_data: dict | None = None,
    fields: dict[str, Any] | None = None,
    after: Callable[[ProviderOperation, bool], None] | None = None,
    audit: Callable[[ProviderOperation, bool], dict[str, Any]],
    claimed: ProviderOperation | None = None,
) -> ProviderOperation:
    """Record ``outcome``, the caller's side rows (``after``) and the audit row in one transaction.
    If someone settled the operation while the call ran, their state stands and only the answer
    is added (``late=True`` for ``after`` and ``audit``).

    ``claimed``: the claim's own row as inserted (``Claim.operation``), to save re-reading it. The
    common case, a row still ``pending``, is then one conditional UPDATE: nothing but this call
    changes a pending row's columns without moving its state, so the claimed copy plus this
    update is the row. Any other case (moved to ``unknown`` meanwhile, or settled) reads it
    under a row lock as before.
    """
    if claimed is None and operation_id is None:
        raise TypeError("operation_finish() needs operation_id or claimed")
    with transaction.atomic():
        if claimed is not None and claimed.state == S.PENDING:
            operation = claimed
            values = _record_values(operation, outcome, response_data, fields)
            if operation_transition(operation, to=outcome.state, only_from=(S.PENDING,), **values):
                if after:
                    after(operation, False)
                audit_record(campaign=operation.campaign, **audit(operation, False))
                return operation
        operation = (
            ProviderOperation.objects.select_for_update(of=("self",))
            .select_related("user", "campaign")
            .get(pk=claimed.pk if claimed is not None else operation_id)
        )
        values = _record_values(operation, outcome, response_data, fields)
        # Only a call's own open states take its answer; a person's or the reconcile's decision stands.
        late = not operation_transition(
            operation, to=outcome.state, only_from=(S.PENDING, S.UNKNOWN), **values
        )
        if late:
            logger.warning("Operation %s was settled before its answer was recorded", operation.pk)
            values.pop("finished_at")
            ProviderOperation.objects.filter(pk=operation.pk).update(**values)
            for name, value in values.items():
                setattr(operation, name, value)
        if after:
            after(operation, late)
        audit_record(campaign=operation.campaign, **audit(operation, late))
    return operation


def _record_values(
    operation: ProviderOperation, outcome: Outcome, response_data: dict | None, fields: dict[str, Any] | None
) -> dict[str, Any]:
    """The columns an outcome sets: finished, the error's and the caller's, the answer."""
    values = {**_finished(outcome.started), **_error_fields(outcome.error, kind=operation.kind)}
    values.update(fields or {}, **({"response_data": response_data} if response_data is not None else {}))
    return values


def operation_log(
    *,
    campaign: Campaign,
    user,
    kind: str,
    started: float,
    code: str = "",
    amount: Decimal | None = None,
    request_data: dict[str, Any] | None = None,
    response_data: dict[str, Any] | None = None,
    error: ProviderError | None = None,
    balance_after: Decimal | None = None,
) -> ProviderOperation:
    """Write a finished read operation (check, poll, test) in one insert."""
    row = operation_log_row(
        campaign=campaign,
        user=user,
        kind=kind,
        finished=_finished(started),
        code=code,
        amount=amount,
        request_data=request_data,
        response_data=response_data,
        error=error,
        balance_after=balance_after,
    )
    row.save(force_insert=True)
    return row


def call_finished(started: float) -> dict[str, Any]:
    """``finished_at`` and ``duration_ms`` of a call that just ended (for :func:`operation_log_row`):
    taken when the answer arrives, not when a batch of rows is written later."""
    return _finished(started)


def operation_log_row(
    *,
    campaign: Campaign,
    user,
    kind: str,
    finished: dict[str, Any],
    code: str = "",
    amount: Decimal | None = None,
    request_data: dict[str, Any] | None = None,
    response_data: dict[str, Any] | None = None,
    error: ProviderError | None = None,
    balance_after: Decimal | None = None,
) -> ProviderOperation:
    """The unsaved row :func:`operation_log` writes; many of them go in with
    :func:`operation_log_many` (the stock poll of a chunk of campaigns)."""
    fields = {"response_data": response_data or {}, **finished, **_error_fields(error, kind=kind)}
    if response_data is not None:
        fields["response_data"] = response_data
    return ProviderOperation(
        campaign=campaign,
        user=_user(user),
        kind=kind,
        state=S.SUCCEEDED if error is None else S.FAILED,
        amount=amount,
        request_data=request_data or {},
        balance_after=balance_after,
        **code_fields(code),
        **fields,
    )


def operation_log_many(rows: list[ProviderOperation]) -> list[ProviderOperation]:
    """Insert finished read rows (from :func:`operation_log_row`) in one statement; the rows get
    their primary keys (PostgreSQL and SQLite return them)."""
    return ProviderOperation.objects.bulk_create(rows)
