"""Celery beat entries, read by portal/celery.py. Exactly one beat process runs them.

Each entry dispatches a small task; fan-out to per-campaign work happens inside the task.
"""

BEAT_SCHEDULE: dict[str, dict] = {}
