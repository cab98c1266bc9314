"""Celery task of the accounts area: mailing a password reset link (services/accounts.py)."""

from __future__ import annotations

from celery import shared_task

from ..services.accounts import RESET_TASK, password_reset_send


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=58)
def password_reset_send_task(email: str, domain: str, use_https: bool, language: str) -> int:
    # Takes the typed address, not a user id: the page must not look anyone up (enumeration).
    return password_reset_send(email=email, domain=domain, use_https=use_https, language=language)


RESET_TASK.task = password_reset_send_task
