"""Celery beat entries, read by portal/celery.py. Exactly one beat process runs them.

Kept outside vouchers.tasks on purpose: Celery reads this before Django apps are loaded, and
importing the tasks package then would fail (it imports models).

Each entry dispatches a small task; fan-out to the real work happens inside the task.
"""

from celery.schedules import crontab

BEAT_SCHEDULE: dict[str, dict] = {
    # Stock: every minute, claim the Allsafe campaigns whose own interval is due and enqueue one
    # chunk poll per STOCK_POLL_CHUNK_SIZE of them (vouchers/tasks/stock.py).
    # A dispatch that waited in the queue for a minute is dropped: the next one does its work.
    "stock-poll-dispatch": {
        "task": "vouchers.tasks.stock.stock_poll_dispatch_task",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Stock: delete history older than STOCK_HISTORY_DAYS, once a night.
    "stock-history-cleanup": {
        "task": "vouchers.tasks.stock.stock_history_cleanup_task",
        "schedule": crontab(hour=3, minute=17),
    },
    # Desk: settle redeems whose answer got lost (and calls interrupted by a crash).
    "desk-reconcile-unknown": {
        "task": "vouchers.tasks.desk.operations_reconcile_due_task",
        "schedule": 30.0,
    },
    # Sales: bulk batches whose worker died are put back on the queue (no row is sold twice).
    "sales-resume-stalled-bulk": {
        "task": "vouchers.tasks.sales.bulk_sales_resume_stalled_task",
        "schedule": 300.0,
    },
}
