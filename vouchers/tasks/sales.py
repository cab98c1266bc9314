"""Celery tasks of the sales area."""
