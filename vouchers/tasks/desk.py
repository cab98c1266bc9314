"""Celery tasks of the desk area."""
