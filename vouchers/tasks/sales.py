"""Celery tasks of the sales area."""

from __future__ import annotations

from celery import shared_task

from ..services.sales import bulk_sale_run


@shared_task(
    acks_late=True,
    # One batch may hold up to SALES_BULK_MAX_ROWS rows of at most one provider timeout each; a
    # hard kill is harmless (the lease expires, an interrupted row goes to review), so the limit
    # only stops a run that hangs forever.
    soft_time_limit=None,
    time_limit=6 * 60 * 60,
)
def bulk_sale_run_task(bulk_sale_id: int) -> None:
    """Sell the rows of one bulk sale. Idempotent: rows already claimed are never sold again."""
    bulk_sale_run(bulk_sale_id=bulk_sale_id)
