"""A production-like portal stack on this machine, for the load and failure drills.

``with Stack() as stack:`` starts, each on a free loopback port and in its own temporary
directory, and stops again on exit, on an error and on Ctrl-C:

- its OWN PostgreSQL cluster (initdb + pg_ctl, run as the ``postgres`` user when we are root)
  and its OWN Redis (no persistence), so drills may stop and restart them freely: the machine's
  shared PostgreSQL (5432) and Redis (6379) belong to other people and are never touched;
- the sandbox providers (a separate process, as a real provider would be);
- gunicorn (3 workers x 4 threads) with ``DJANGO_ENV=production`` and every required variable;
- one Celery worker and exactly one beat.

Then it migrates, collects static files, and creates the drill data: cashiers, a LINA and an
Allsafe campaign pointing at the sandbox, memberships and sale templates, one sandbox token
per cashier. The drill process itself runs Django on the same production settings (ORM for
the invariants, services to start a bulk sale), so ``Stack`` must be created before anything
imports Django settings.

CLI: ``python -m drills.stack --seconds 120`` starts the stack, prints where it runs (no
secrets) and stops it after that long or on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import requests

from portal.processes import ManagedProcess, ProcessError, free_port

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("DRILL_PG_BIN", "/usr/lib/postgresql/15/bin"))
PYTHON = sys.executable
BIN = Path(sys.executable).parent

#: Ports the machine's shared services use: never ours.
RESERVED_PORTS = {5432, 6379, 8000, 8001}

LINA_ACCOUNT = ("demo-shop", "demo-lina-password", "demo-lina-shared-key")
ALLSAFE_ACCOUNT = ("demo-allsafe", "demo-allsafe-password")
# Sandbox templates of demo-shop (sandbox/seed.py): name, hash, layouts.
TEMPLATES = [("Allgemein", "0d4e7a9c2f6b1835", []), ("Geburtstag", "5f0c2b7e9a1d4c38", [1, 2])]
TOKEN_VALUE = Decimal("5000.00")
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class StackError(ProcessError):
    pass


def mask(code: str) -> str:
    """Drill output never shows a full voucher code (same convention as the portal)."""
    return "••••" + code[-4:] if len(code) > 4 else "•" * len(code)


@dataclass
class Cashier:
    username: str
    password: str
    code: str  # the cashier's own sandbox token (full code: kept in memory, never printed)


@dataclass
class Stack:
    """See the module docstring. ``cashiers``: how many drill cashiers (and tokens) to create."""

    cashiers: int = 50
    web_workers: int = 3
    web_threads: int = 4
    worker_concurrency: int = 4
    latency_ms: int = 50
    jitter_ms: int = 250
    bulk_lease_seconds: int = 30
    verbose: bool = False
    # Filled in by start():
    tmp: Path = field(init=False)
    ports: dict[str, int] = field(init=False, default_factory=dict)
    env: dict[str, str] = field(init=False, default_factory=dict)
    procs: dict[str, ManagedProcess] = field(init=False, default_factory=dict)
    users: list[Cashier] = field(init=False, default_factory=list)
    admin_password: str = field(init=False, default="")
    started_at: float = field(init=False, default=0.0)
    #: Portal processes that exited by themselves and were started again (see _supervise).
    restarts: Counter = field(init=False, default_factory=Counter)
    _lock: threading.RLock = field(init=False, default_factory=threading.RLock)
    _stopping: threading.Event = field(init=False, default_factory=threading.Event)

    # --- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        self._old_handlers = {
            sig: signal.signal(sig, self._interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)
        }
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)

    @staticmethod
    def _interrupt(signum, frame):
        # kill of a drill stops the stack like Ctrl-C does (finally blocks run).
        raise KeyboardInterrupt

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.tmp = Path(tempfile.mkdtemp(prefix="portal-drill-"))
        self.tmp.chmod(0o755)  # the postgres user must reach its data directory inside
        taken: set[int] = set(RESERVED_PORTS)
        self.ports = {
            "postgres": free_port(start=5440, taken=taken),
            "redis": free_port(start=6390, taken=taken),
            "web": free_port(start=8140, taken=taken),
            "sandbox": free_port(start=8190, taken=taken),
        }
        self._log(f"stack in {self.tmp}, ports {self.ports}")
        self.postgres_init()
        self.postgres_start()
        self.redis_start()
        self.env = self._portal_env()
        os.environ.update(self.env)
        self._django_setup()
        self.sandbox_start()
        self._prepare_data()
        self.web_start()
        self.worker_start()
        self.beat_start()
        self._supervisor = threading.Thread(target=self._supervise, name="stack-supervisor", daemon=True)
        self._supervisor.start()
        self._log(f"stack up in {time.monotonic() - self.started_at:.1f} s: {self.url}")

    def _supervise(self) -> None:
        """Start web, worker or beat again when one exits by itself, as compose's restart policy
        (``restart: unless-stopped``) does in production. Each restart is counted and printed:
        a drill that needs one has found something (the Celery worker dies when Redis goes away).
        """
        while not self._stopping.wait(1.0):
            for name in ("web", "worker", "beat"):
                with self._lock:
                    proc = self.procs.get(name)
                    if self._stopping.is_set() or proc is None or proc.running:
                        continue
                    self.restarts[name] += 1
                    self._log(f"{name} exited by itself (code {proc.returncode}); starting it again")
                    with contextlib.suppress(Exception):
                        getattr(self, f"{name}_start")()

    def stop(self) -> None:
        """Stop every process this stack started (by its own pid/group) and remove the temp dir."""
        self._stopping.set()
        if getattr(self, "_supervisor", None) is not None:
            self._supervisor.join(timeout=90)
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        for name in ("beat", "worker", "web", "sandbox", "redis"):
            self._stop_proc(name)
        if getattr(self, "tmp", None) and (self.tmp / "pg" / "PG_VERSION").exists():
            with contextlib.suppress(Exception):
                self._pg_ctl("stop", "-m", "immediate", timeout=30)
        if getattr(self, "tmp", None):
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- PostgreSQL (own cluster) -------------------------------------------------------------
    def _as_postgres(self, *command: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)

    def postgres_init(self) -> None:
        pgdata = self.tmp / "pg"
        pgdata.mkdir()
        (self.tmp / "pgsock").mkdir()
        if os.geteuid() == 0:
            shutil.chown(pgdata, "postgres", "postgres")
            shutil.chown(self.tmp / "pgsock", "postgres", "postgres")
        self._run(
            self._as_postgres(
                str(PG_BIN / "initdb"),
                "-D",
                str(pgdata),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ),
            timeout=120,
        )

    def _pg_ctl(self, action: str, *extra: str, timeout: float = 60) -> None:
        port = self.ports["postgres"]
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -k {self.tmp / 'pgsock'} "
            "-c max_connections=200 -c shared_buffers=64MB"
        )
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.tmp / "pg"), "-w", "-t", str(int(timeout))]
        if action in ("start", "restart"):
            command += ["-o", options, "-l", str(self.tmp / "pg" / "server.log")]
        self._run(self._as_postgres(*command, action, *extra), timeout=timeout + 10)

    def postgres_start(self) -> None:
        self._pg_ctl("start")
        self._run(
            self._as_postgres(
                str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.ports["postgres"]), "portal"
            ),
            timeout=30,
        )

    def postgres_restart(self) -> None:
        """A fast restart: open connections are cut, as a failover or a crash would cut them."""
        self._pg_ctl("restart", "-m", "fast")

    # --- Redis (own, no persistence) ----------------------------------------------------------
    def redis_start(self) -> None:
        (self.tmp / "redis").mkdir(exist_ok=True)
        self._spawn(
            "redis",
            [
                "redis-server",
                "--port",
                str(self.ports["redis"]),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.tmp / "redis"),
            ],
        )
        self.procs["redis"].wait_for_port(self.ports["redis"], timeout=15)

    def redis_stop(self) -> None:
        self._stop_proc("redis")

    # --- portal processes ---------------------------------------------------------------------
    def _portal_env(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        pg, rd = self.ports["postgres"], self.ports["redis"]
        (self.tmp / "var").mkdir()
        return {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_ENV": "production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg}/portal",
            "REDIS_URL": f"redis://127.0.0.1:{rd}/1",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{rd}/0",
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SANDBOX_ENABLED": "false",
            # Production allows only the real provider hosts; the drills' providers are local.
            "LINA_ALLOWED_HOSTS": f"http://127.0.0.1:{self.ports['sandbox']}",
            "ALLSAFE_ALLOWED_HOSTS": f"http://127.0.0.1:{self.ports['sandbox']}",
            "PORTAL_VAR_DIR": str(self.tmp / "var"),
            "DJANGO_STATIC_ROOT": str(self.tmp / "static"),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(self.tmp / "mail"),
            "LOG_LEVEL": "INFO" if self.verbose else "WARNING",
            # 50 drill tills on one campaign check far more codes than a shop's real tills: lift
            # the look-up throttle so the drill measures the path, not the limit (as bench does).
            "LOOKUP_LIMIT_PER_USER": "100000",
            "LOOKUP_LIMIT_PER_CAMPAIGN": "1000000",
            # Short enough that a batch whose worker was killed is taken over within a drill.
            "SALES_BULK_LEASE_SECONDS": str(self.bulk_lease_seconds),
            # Shorter than production's 30 s so "balance unchanged" settles within a drill.
            "DESK_RECONCILE_SETTLE_SECONDS": "10",
        }

    def _django_setup(self) -> None:
        import django
        from django.conf import settings

        if settings.configured and not settings.PRODUCTION:
            raise StackError("Django was set up before the stack; create the Stack first")
        django.setup()

    def _prepare_data(self) -> None:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        call_command("collectstatic", verbosity=0, interactive=False)
        self._create_drill_data()

    def _create_drill_data(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group

        from vouchers.access import roles
        from vouchers.models import Campaign, Membership, SaleTemplate

        sandbox = self.sandbox_url
        lina = Campaign(
            slug="drill-lina",
            name="Drill LINA",
            provider="lina",
            base_url=f"{sandbox}/lina/extern/tokenapi",
            is_live=True,
            api_username=LINA_ACCOUNT[0],
            read_timeout=5.0,
        )
        lina.api_password = LINA_ACCOUNT[1]
        lina.api_shared_key = LINA_ACCOUNT[2]
        lina.save()
        allsafe = Campaign(
            slug="drill-allsafe",
            name="Drill Allsafe",
            provider="allsafe",
            base_url=f"{sandbox}/allsafe",
            is_live=True,
            api_username=ALLSAFE_ACCOUNT[0],
            poll_interval_minutes=1,
            read_timeout=5.0,
        )
        allsafe.api_password = ALLSAFE_ACCOUNT[1]
        allsafe.api_shared_key = ""
        allsafe.save()
        for name, template_hash, layouts in TEMPLATES:
            SaleTemplate.objects.create(
                campaign=lina, name=name, template_hash=template_hash, allowed_layouts=layouts
            )
        User = get_user_model()
        cashier_group = Group.objects.get(name=roles.CASHIER)
        self.admin_password = secrets.token_urlsafe(16)
        admin = User.objects.create_superuser("drill-admin", "drill-admin@example.com", self.admin_password)
        for campaign in (lina, allsafe):
            Membership.objects.create(user=admin, campaign=campaign)
        self.users = []
        suffixes = set()
        for i in range(self.cashiers):
            password = secrets.token_urlsafe(16)
            user = User.objects.create_user(f"drill-cashier-{i + 1:02d}", password=password)
            user.groups.add(cashier_group)
            Membership.objects.create(user=user, campaign=lina)
            # The last four characters differ per token, so the masked codes the sandbox journals
            # ("••••0007") tell the tokens apart for the invariant checker.
            suffix = f"{i + 1:04d}"
            suffixes.add(suffix)
            code = "DR" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(10)) + suffix
            self.control(
                "POST", "tokens", {"code": code, "value": str(TOKEN_VALUE), "account": LINA_ACCOUNT[0]}
            )
            self.users.append(Cashier(user.username, password, code))
        assert len(suffixes) == self.cashiers

    def web_start(self) -> None:
        self._spawn(
            "web",
            [
                str(BIN / "gunicorn"),
                "portal.wsgi",
                "--bind",
                f"127.0.0.1:{self.ports['web']}",
                "--workers",
                str(self.web_workers),
                "--threads",
                str(self.web_threads),
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
            ],
            env={**os.environ, **self.env},
        )
        self.procs["web"].wait_until(
            lambda: requests.get(f"{self.url}/healthz", timeout=2).status_code == 200,
            timeout=60,
            ignore=(requests.RequestException,),
        )

    def worker_start(self) -> None:
        self._spawn(
            "worker",
            [
                str(BIN / "celery"),
                "-A",
                "portal",
                "worker",
                "-l",
                "INFO" if self.verbose else "WARNING",
                "--concurrency",
                str(self.worker_concurrency),
                "-n",
                f"drill-{self.ports['web']}@%h",
            ],
            env={**os.environ, **self.env},
        )
        time.sleep(3)  # prefork children import Django; a task sent now just waits in Redis anyway

    def worker_kill(self) -> int:
        """SIGKILL the worker's whole process group (main process and pool children), no warning."""
        with self._lock:  # the supervisor must not take this for a crash and restart it
            proc = self.procs.pop("worker")
            proc.kill()
        return proc.pid

    def beat_start(self) -> None:
        self._spawn(
            "beat",
            [
                str(BIN / "celery"),
                "-A",
                "portal",
                "beat",
                "-l",
                "INFO" if self.verbose else "WARNING",
                "-s",
                str(self.tmp / "var" / "celerybeat-schedule"),
            ],
            env={**os.environ, **self.env},
        )

    # --- sandbox ------------------------------------------------------------------------------
    def sandbox_start(self) -> None:
        # The sandbox refuses DJANGO_ENV=production (sandbox/guard.py): it gets its own environment.
        env = {k: v for k, v in os.environ.items() if k not in self.env}
        self._spawn(
            "sandbox",
            [PYTHON, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(self.ports["sandbox"]), "--quiet"],
            env=env,
        )
        self.procs["sandbox"].wait_for_port(self.ports["sandbox"], timeout=20)
        self.control("POST", "latency", {"ms": self.latency_ms, "jitter_ms": self.jitter_ms})

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sandbox']}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['web']}"

    def control(self, method: str, endpoint: str, payload: dict | None = None, **params):
        response = requests.request(
            method, f"{self.sandbox_url}/_sandbox/{endpoint}", json=payload, params=params or None, timeout=30
        )
        if response.status_code >= 400:
            raise StackError(f"sandbox {method} {endpoint}: {response.status_code} {response.text[:200]}")
        return response.json()

    def fault(self, operation: str, kind: str, *, provider: str = "lina", count=None, **params) -> dict:
        spec = {"provider": provider, "operation": operation, "kind": kind, **params}
        spec.update({"permanent": True} if count is None else {"count": count})
        return self.control("POST", "faults", spec)

    # --- Celery from the drill process --------------------------------------------------------
    def send_task(self, name: str, *args) -> None:
        from portal.celery import app

        app.send_task(name, args=list(args))

    def reconcile_now(self) -> None:
        """What beat does every 30 s: settle unknown redeems (and calls a dead process left)."""
        self.send_task("vouchers.tasks.desk.operations_reconcile_due_task")

    def resume_stalled_now(self) -> None:
        """What beat does every 5 min: put bulk batches whose worker died back on the queue."""
        self.send_task("vouchers.tasks.sales.bulk_sales_resume_stalled_task")

    # --- helpers ------------------------------------------------------------------------------
    def _spawn(self, name: str, command: list[str], env: dict | None = None) -> None:
        # ``env`` is the whole environment when given (the sandbox must not inherit production).
        self.procs[name] = ManagedProcess(
            name,
            command,
            cwd=ROOT,
            env=env if env is not None else dict(os.environ),
            log=self.tmp / f"{name}.log",
        ).start()

    def _stop_proc(self, name: str, timeout: float = 10) -> None:
        with self._lock:
            proc = self.procs.pop(name, None)
        if proc is not None:
            proc.stop(timeout=timeout)

    def _run(self, command: list[str], timeout: float) -> None:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise StackError(f"{Path(command[0]).name} … failed: {(result.stderr or result.stdout)[-500:]}")

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.tmp / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _log(self, text: str) -> None:
        print(f"[stack] {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120, help="stop by itself after this long")
    parser.add_argument("--cashiers", type=int, default=50)
    args = parser.parse_args(argv)
    with Stack(cashiers=args.cashiers) as stack:
        print(f"portal  {stack.url}/ (send X-Forwarded-Proto: https; production settings)")
        print(f"sandbox {stack.sandbox_url}/_sandbox/")
        print(
            f"admin user drill-admin; {len(stack.users)} cashiers drill-cashier-NN (passwords in memory only)"
        )
        print(f"stopping in {args.seconds:.0f} s (Ctrl-C stops now)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
