"""Celery tasks of the desk area: settling redeems whose outcome is unknown.

Both are safe to run twice: reconcile only changes an operation that is still ``unknown`` (under
a row lock) and only ever re-checks the balance, never redeems again.
"""

from celery import shared_task

from ..services.operations import operation_reconcile, operations_reconcile_due
from ..services.queueing import enqueue_or_log

# Above the longest provider call (connect 60 s + read 120 s, the campaign maxima).
_TIME_LIMITS = {"soft_time_limit": 200, "time_limit": 240}


@shared_task(acks_late=True, ignore_result=True, **_TIME_LIMITS)
def operation_reconcile_task(operation_id: int) -> None:
    operation_reconcile(operation_id=operation_id)


@shared_task(acks_late=True, ignore_result=True, **_TIME_LIMITS)
def operations_reconcile_due_task() -> None:
    """Fan out: one reconcile task per unknown redeem (beat runs this; see vouchers/schedule.py)."""
    for operation_id in operations_reconcile_due():
        # Not queued (broker gone): still unknown, so the next run (30 s) finds it again.
        enqueue_or_log(operation_reconcile_task, operation_id)
