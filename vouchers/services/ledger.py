"""The ledger of provider operations: claim before a call, record after it.

Money-moving calls (redeem, purchase, allocate) use :func:`operation_claim` in a short
transaction *before* the provider is called, and :func:`operation_record` in another short
transaction afterwards (ARCHITECTURE.md, "claim → call → record"); no transaction or lock is held
during the HTTP call. Reads (check, poll, connection test) are written once, after the call, with
:func:`operation_log`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import Campaign, ProviderOperation
from ..models.ledger import OPEN_STATES, OperationState
from ..providers.errors import ProviderError
from ..values.codes import code_digest, mask_code


class CodeBusy(Exception):
    """Another operation on the same code is still open (pending or unresolved)."""

    def __init__(self, operation: ProviderOperation | None = None):
        self.operation = operation
        super().__init__("This code is being redeemed elsewhere.")


@dataclass(frozen=True)
class Claim:
    operation: ProviderOperation
    #: False when the request token was seen before: show the earlier operation, call nothing.
    created: bool


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
) -> Claim:
    """Insert a ``pending`` operation row, once per request token; ``extra``: more of its fields.

    Returns the existing row (``created=False``) when ``request_token`` was used before: a
    double click, a reload or a back-button resubmit leads to the same single operation. Raises
    :class:`CodeBusy` when the partial unique constraint finds an open redeem on the same code.
    """
    if request_token:
        existing = ProviderOperation.objects.filter(request_token=request_token).first()
        if existing is not None:
            return Claim(existing, created=False)
    digest = code_digest(code) if code else ""
    try:
        with transaction.atomic():
            operation = ProviderOperation.objects.create(
                campaign=campaign,
                user=user if getattr(user, "is_authenticated", False) else None,
                kind=kind,
                state=OperationState.PENDING,
                request_token=request_token or None,
                code_masked=mask_code(code) if code else "",
                code_digest=digest,
                amount=amount,
                request_data=request_data or {},
                **(extra or {}),
            )
    except IntegrityError:
        # Either the same request token won a race (show that operation) or the code is busy.
        if request_token:
            existing = ProviderOperation.objects.filter(request_token=request_token).first()
            if existing is not None:
                return Claim(existing, created=False)
        busy = ProviderOperation.objects.filter(
            campaign=campaign, code_digest=digest, kind=kind, state__in=OPEN_STATES
        ).first()
        raise CodeBusy(busy) from None
    return Claim(operation, created=True)


def operation_record(
    *,
    operation: ProviderOperation,
    state: str,
    started: float | None = None,
    response_data: dict[str, Any] | None = None,
    error: ProviderError | None = None,
    **fields: Any,
) -> ProviderOperation:
    """Finish an operation: its state, what came back, the error (if any) and the duration.

    ``fields`` may set further columns such as ``balance_before``/``balance_after``. Only the
    given columns are written, so this never overwrites a concurrent resolution's fields.
    """
    operation.state = state
    operation.finished_at = timezone.now()
    update = ["state", "finished_at"]
    if started is not None:
        operation.duration_ms = max(0, int((time.monotonic() - started) * 1000))
        update.append("duration_ms")
    if response_data is not None:
        operation.response_data = response_data
        update.append("response_data")
    if error is not None:
        operation.error_code = error.code
        operation.error_message = error.message
        update += ["error_code", "error_message"]
    for name, value in fields.items():
        setattr(operation, name, value)
        update.append(name)
    operation.save(update_fields=update)
    return operation


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
    state = OperationState.SUCCEEDED if error is None else OperationState.FAILED
    now = timezone.now()
    return ProviderOperation.objects.create(
        campaign=campaign,
        user=user if getattr(user, "is_authenticated", False) else None,
        kind=kind,
        state=state,
        code_masked=mask_code(code) if code else "",
        code_digest=code_digest(code) if code else "",
        amount=amount,
        request_data=request_data or {},
        response_data=response_data or {},
        error_code=error.code if error else "",
        error_message=error.message if error else "",
        balance_after=balance_after,
        finished_at=now,
        duration_ms=max(0, int((time.monotonic() - started) * 1000)),
    )
