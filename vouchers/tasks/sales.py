"""Celery tasks of the sales area."""

from __future__ import annotations

from celery import shared_task

from ..selectors.sales import bulk_sale_lease_seconds
from ..services.bulk_sales import RUN_TASK, RunOutcome, bulk_sale_run, bulk_sales_resume_stalled


@shared_task(
    bind=True,
    acks_late=True,
    max_retries=100,
    # One batch holds up to SALES_BULK_MAX_ROWS rows of at most one provider timeout each (fewer
    # rounds of them with SALES_BULK_CONCURRENCY rows at once); a hard kill is harmless (the lease
    # runs out, the rows that were in flight go to review), so this limit only ends a run that
    # hangs for good.
    time_limit=6 * 60 * 60,
)
def bulk_sale_run_task(self, bulk_sale_id: int) -> str:
    """Sell the rows of one bulk sale. Idempotent: rows already claimed are never sold again.

    One task per batch, whatever SALES_BULK_CONCURRENCY says: the rows in flight are threads of
    this task (services/bulk_sales._sell_rows says why), so the lease, Resume and the stalled
    sweep still see one run per batch.

    When another run holds the batch's lease (a redelivered message while the first run still
    works, or a crashed run whose lease has not run out yet), try again once it could have
    expired: then either the batch is finished or this run takes over where the dead one stopped.
    """
    outcome = bulk_sale_run(bulk_sale_id=bulk_sale_id)
    if outcome == RunOutcome.BUSY:
        raise self.retry(countdown=bulk_sale_lease_seconds() + 1)
    return outcome


RUN_TASK.task = bulk_sale_run_task


@shared_task(acks_late=True, time_limit=120, expires=240)
def bulk_sales_resume_stalled_task() -> int:
    """Scheduled sweep for batches whose worker died; see bulk_sales_resume_stalled."""
    return bulk_sales_resume_stalled()
