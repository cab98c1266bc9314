"""Celery tasks of the stock area."""
