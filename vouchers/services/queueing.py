"""Putting a task on the queue without letting a broker outage become a server error or a hang.

Every place that enqueues work goes through :func:`enqueue`. It lives beside the services, not
in ``tasks/``, so services can queue work without importing the task modules: a service that
starts a job declares a hook (a :class:`TaskHook`) that the task module fills in when it is
imported (``vouchers.apps`` imports every task module at start-up). With the broker unreachable, Celery's
default publish retries (and kombu's reconnects) could hold a web request for seconds; here one
publish attempt is made with a short, bounded retry, and a failure raises
:class:`QueueUnavailable` for the caller to turn into a message and a consistent state that a
scheduled sweep (or a person) picks up later.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

#: At most one quick second attempt (a dropped pooled connection is re-opened once), never more.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}


class QueueUnavailable(Exception):
    """The task could not be handed to the broker; nothing was queued."""


def enqueue(task, *args, **options) -> None:
    """``task.apply_async(args)`` with a bounded publish; raises QueueUnavailable when it fails."""
    try:
        task.apply_async(args=args, retry=True, retry_policy=PUBLISH_RETRY_POLICY, **options)
    except Exception as exc:  # any failure to publish means the same to the caller: not queued
        logger.warning(
            "Could not queue %s%r: %s (%s)", getattr(task, "name", task), args, type(exc).__name__, exc
        )
        raise QueueUnavailable(str(exc)) from exc


class TaskHook:
    """The task a service queues, set by the task module (services never import tasks)."""

    def __init__(self, name: str):
        self.name = name
        self.task = None

    def send(self, *args, **options) -> None:
        """``enqueue`` the task; QueueUnavailable if it is not registered or cannot be published."""
        if self.task is None:
            raise QueueUnavailable(f"task {self.name} is not registered")
        enqueue(self.task, *args, **options)


def enqueue_or_log(task, *args, **options) -> bool:
    """For fan-out inside workers: a failure is logged and the next scheduled run tries again."""
    try:
        enqueue(task, *args, **options)
    except QueueUnavailable:
        return False
    return True
