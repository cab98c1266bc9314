"""What the portal benchmarks share: a throwaway Django database, the sandbox, quiet logs.

Import this module first in a bench script: it puts the project on ``sys.path``, points the
settings at a temporary ``PORTAL_VAR_DIR`` and (without ``DATABASE_URL``) at a fresh SQLite file
in it, and calls ``django.setup()``. :func:`throwaway_database` then migrates a database that is
dropped afterwards: with ``DATABASE_URL`` a separate PostgreSQL database ``<name>_benchrun``
(never the configured one and never pytest's ``test_<name>``), otherwise the SQLite file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VAR_DIR = tempfile.mkdtemp(prefix="portal-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ["PORTAL_VAR_DIR"] = VAR_DIR
os.environ.setdefault("DATABASE_URL", f"sqlite:///{VAR_DIR}/bench.sqlite3")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "false")
# One benchmark "cashier" checks far more codes a minute than a person could: lift the
# look-up throttle (vouchers/services/throttle.py) so it measures the path, not the limit.
for _name in (
    "LOOKUP_LIMIT_PER_USER",
    "LOOKUP_LIMIT_PER_CAMPAIGN",
    "LOOKUP_FAILED_LIMIT_PER_USER",
    "LOOKUP_FAILED_LIMIT_PER_CAMPAIGN",
):
    os.environ.setdefault(_name, "1000000")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

from sandbox.server import SandboxServer, start_in_thread, stop  # noqa: E402
from sandbox.state import Store  # noqa: E402

SUFFIX = "_benchrun"


def serve_like_production() -> None:
    """What the test client needs, without the test harness's instrumentation.

    ``django.test.utils.setup_test_environment()`` also swaps template rendering for one that
    sends every template's context in a signal (for ``assertTemplateUsed``); a deployed portal
    has none of that, so a benchmark using it would time the harness. DEBUG off, as deployed:
    with it on Django keeps every SQL statement in memory.
    """
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the test client's host
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def silence_logs() -> None:
    """Logging stays on (its cost is part of the portal's) but writes to /dev/null."""
    sink = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)
    for name in logging.root.manager.loggerDict:
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sink)


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def database_label() -> str:
    db = settings.DATABASES["default"]
    return f"{connection.vendor} ({Path(db['NAME']).name if connection.vendor == 'sqlite' else db['NAME']})"


def database_url() -> str:
    """A URL for other processes (a Celery worker) to reach the database in use now."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = db["PASSWORD"] or ""
    return f"postgres://{db['USER']}:{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextlib.contextmanager
def throwaway_database() -> Iterator[None]:
    """Migrate a fresh database, yield, drop it (and the temporary directory) at the end."""
    old_name = None
    try:
        if is_postgres():
            db = settings.DATABASES["default"]
            db.setdefault("TEST", {})["NAME"] = f"{db['NAME']}{SUFFIX}"
            old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        else:
            call_command("migrate", verbosity=0, interactive=False)
        yield
    finally:
        connections.close_all()
        if old_name is not None:
            connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(VAR_DIR, ignore_errors=True)


@contextlib.contextmanager
def running_sandbox(latency_ms: int) -> Iterator[SandboxServer]:
    """The provider simulators in a daemon thread on 127.0.0.1, a free port, with demo data."""
    server, _thread = start_in_thread("127.0.0.1", 0, store=Store(base_latency_ms=latency_ms), quiet=True)
    try:
        yield server
    finally:
        stop(server)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000
