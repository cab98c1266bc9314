"""Celery beat entries, read by portal/celery.py. Exactly one beat process runs them.

Each entry dispatches a small task; fan-out to per-campaign work happens inside the task.
"""

BEAT_SCHEDULE: dict[str, dict] = {
    # Desk: settle redeems whose answer got lost (and calls interrupted by a crash).
    "desk-reconcile-unknown": {
        "task": "vouchers.tasks.desk.operations_reconcile_due_task",
        "schedule": 30.0,
    },
}
