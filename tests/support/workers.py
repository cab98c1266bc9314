"""A real Celery worker process on real Redis, for tests of background jobs.

The worker runs as a separate process against the *test* database (PostgreSQL only: SQLite's
test database lives in this process's memory), so tests using it need
``@pytest.mark.django_db(transaction=True)`` and the ``postgres`` and ``redis`` markers.
It can be killed hard (SIGKILL, as a crash would) and started again.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from portal.processes import ManagedProcess, celery_worker_command

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(self, env: dict[str, str], queue_prefix: str, include: tuple[str, ...] = ()):
        self.env = env
        #: Extra modules the worker imports at start (celery's ``-I``), e.g. a test provider.
        self.include = tuple(include)
        self.queue_prefix = queue_prefix
        self.process: ManagedProcess | None = None
        self.log_path = Path(env["PORTAL_VAR_DIR"]) / "worker.log"

    def start(self, concurrency: int = 2, pool: str = "threads") -> None:
        extra = ["-I", ",".join(self.include)] if self.include else []
        command = celery_worker_command(pool=pool, concurrency=concurrency, name="test", extra=extra)
        self.process = ManagedProcess("Celery worker", command, cwd=ROOT, env=self.env, log=self.log_path)
        self.process.start().wait_for_log(b"ready.", timeout=30)

    def wait_until(self, predicate, timeout: float = 30, what: str = "condition") -> None:
        """Until ``predicate()`` is true; fails with the worker's log (or when the worker died)."""
        self.process.wait_until(predicate, timeout=timeout, what=f"waiting for {what}")

    def kill(self) -> None:
        """SIGKILL the whole worker, as a crash or an OOM kill would."""
        if self.process:
            self.process.kill()
        self.log_path.write_bytes(b"")  # so the next start waits for its own "ready."

    def stop(self) -> None:
        if self.process:
            self.process.stop(timeout=15)

    def output(self) -> str:
        return self.process.tail(5000) if self.process else ""


@pytest.fixture
def celery_worker_process(transactional_db, settings, tmp_path):
    """Yields a function ``start(concurrency=2, include=(), env=None)`` → WorkerProcess bound to the
    test database; ``env`` adds environment variables (settings) for that worker only.

    Tasks sent from the test process (``task.delay``) go to the same Redis broker; the Celery
    app in this process is pointed at it for the test's duration.
    """
    from django.db import connection

    from portal.celery import app

    if connection.vendor != "postgresql":
        pytest.skip("a worker process needs the PostgreSQL test database")
    redis_url = os.environ["REDIS_URL"]
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    base_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_url,
        "REDIS_URL": redis_url,
        "PORTAL_VAR_DIR": str(tmp_path),
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
        # The same provider allow-lists as this process (with the tests' made-up hosts).
        **{
            f"{provider.upper()}_ALLOWED_HOSTS": ",".join(entries)
            for provider, entries in settings.PROVIDER_ALLOWED_HOSTS.items()
        },
    }
    if app.conf.broker_url != redis_url:
        pytest.fail("this process's Celery broker must be REDIS_URL (settings use it when it is set)")
    workers: list[WorkerProcess] = []

    def start(
        concurrency: int = 2, include: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> WorkerProcess:
        worker = WorkerProcess({**base_env, **(env or {})}, prefix, include=include)
        worker.start(concurrency=concurrency)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
