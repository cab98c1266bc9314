"""Benchmark of every list and export page at 10,000 and at 1,000,000 ledger rows, through gunicorn.

Target (issue 17, item 4; PRODUCT.md "Speed"): every list page p50 <= 100 ms at a million ledger
rows, with the same number of SQL queries as at 10,000; CSV exports stream in constant memory.

Run (PostgreSQL required; ~10 min at a million rows on this machine: ~2 min seeding, which
``--keep`` saves next time, ~3 min streaming whole files for the memory figures, which
``--no-memory`` skips)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_x REDIS_URL=redis://127.0.0.1:6379/10 \\
        .venv/bin/python bench/bench_lists.py [--quick] [--keep]

``--quick``: 100,000 rows instead of a million (development, ~1 min). ``--keep``: keep the big
database (``<name>_bl<rows>``) and reuse it next time instead of seeding again (the pages' own
rows of "today" are renewed every run). Exit status 1 on a missed target, 77 without PostgreSQL.

How it measures, and why so:

- The portal runs as deployed: gunicorn with ``deploy/gunicorn.conf.py`` (3 workers x 4 threads),
  ``DJANGO_ENV=production`` (manifest static files, secure cookies behind the proxy header),
  PostgreSQL and Redis. Each person logs in over HTTP with the login form and its CSRF token;
  every page is then fetched with ``requests`` like a browser (``X-Forwarded-Proto: https`` as
  the TLS proxy sends it). A page's time is the whole response, body read.
- Each page is fetched ``--fetches`` times per round (after one warm-up), 3 rounds; the figure of
  a round is its median; printed are min/median/max of the three rounds, and the target is
  checked on the median.
- Queries per page are counted in this process (Django's test client with the same user, the
  same URL, ``CaptureQueriesContext``) at both sizes: gunicorn's workers do not report them.
- Exports are timed to their first 50 rows (streaming: the time a person waits until the
  download is under way); their peak memory is measured apart, in this process (growth of the peak RSS), while
  files of about 100,000 rows stream through the views to /dev/null.
- Data: 90 % of the rows are checks, redeems and polls spread over the past year, 70 % in the
  viewer's campaigns and 30 % in one they do not belong to (so scoping filters for real); 10 %
  are sales (a purchase or allocate row each, with a ~3 kB ciphertext standing in for the QR
  image); one audit event per ledger row. Inserted with ``INSERT … SELECT generate_series``.
  What the first page of each list shows is the same at both sizes (today's 40 redeems, 10 open
  operations). ANALYZE after each load, as autovacuum would.
"""

from __future__ import annotations

import os

# Both this process and gunicorn must read the same ciphertexts and sessions.
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "bGlzdHMtYmVuY2gtZmllbGQta2V5LTMyLWJ5dGVzISE=")

import argparse
import contextlib
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import requests
import support
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection, models
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import resolve, reverse
from django.utils import timezone

from portal.processes import ManagedProcess, free_port
from vouchers.access import roles
from vouchers.models import (
    AuditEvent,
    Campaign,
    Membership,
    ProviderOperation,
    Sale,
    StockLevel,
    StockSnapshot,
)
from vouchers.models.ledger import OperationKind, OperationState
from vouchers.services.tokens import lina_today

SKIPPED = 77
SMALL_ROWS = 10_000
TARGET_MS = 100.0  # the target for every list page, p50
ROUNDS = 3
EXPORT_ROWS = 50  # an export is timed to its first 50 rows: a page's worth, the download has begun
MEMORY_ROWS = 100_000  # exports' peak memory is stated at this many rows
PASSWORD = secrets.token_urlsafe(16)
BIN = Path(sys.executable).parent
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


# --- databases --------------------------------------------------------------------------------
def _admin_cursor():
    import psycopg

    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


def use_database(name: str, *, fresh: bool) -> bool:
    """Point Django at database ``name`` (created if missing, dropped first if ``fresh``) and
    migrate it. Returns whether it already existed (and was kept)."""
    connection.close()
    with _admin_cursor() as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')
    settings.DATABASES["default"]["NAME"] = name
    connection.settings_dict["NAME"] = name
    call_command("migrate", verbosity=0, interactive=False)
    return bool(exists)


def drop_database(name: str) -> None:
    connection.close()
    with _admin_cursor() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- data -------------------------------------------------------------------------------------
def people_and_campaigns():
    """The bench's campaigns and people (created once per database)."""
    User = get_user_model()
    if Campaign.objects.filter(slug="lists-shop").exists():
        shop, vault, elsewhere = (
            Campaign.objects.get(slug=s) for s in ("lists-shop", "lists-vault", "elsewhere")
        )
    else:
        shop, vault, elsewhere = (
            Campaign.objects.create(
                name=slug.title(), slug=slug, provider=provider, base_url="https://example.test", is_live=True
            )
            for slug, provider in (("lists-shop", "lina"), ("lists-vault", "allsafe"), ("elsewhere", "lina"))
        )
        for name, role, campaigns in (
            ("cashier", roles.CASHIER, [shop]),
            ("admin", roles.CAMPAIGN_ADMIN, [shop, vault]),
            *((f"till{n:02d}", roles.CASHIER, [shop]) for n in range(30)),  # the people page's rows
        ):
            user = User.objects.create_user(f"lists-{name}", is_staff=role in roles.STAFF_ROLES)
            user.groups.add(Group.objects.get(name=role))
            for c in campaigns:
                Membership.objects.create(user=user, campaign=c)
        # The Django admin's ledger and audit lists are for superusers.
        User.objects.create_user("lists-root", is_staff=True, is_superuser=True)
    users = {
        "cashier": User.objects.get(username="lists-cashier"),
        "admin": User.objects.get(username="lists-admin"),
        "superuser": User.objects.get(username="lists-root"),
    }
    for user in users.values():  # a fresh password each run: gunicorn logs in with it
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    return (shop, vault, elsewhere), users


def fixed_rows(shop, vault, cashier) -> None:
    """What the first pages show, the same at both sizes: 40 redeems by the cashier today,
    10 operations to review, a month of hourly stock snapshots. Renewed on every run."""
    import hashlib

    ProviderOperation.objects.filter(code_masked__regex=r"^(TDAY|OPEN)-").delete()
    now = timezone.now()
    rows = [
        ProviderOperation(
            campaign=shop,
            user=cashier,
            kind=OperationKind.REDEEM,
            state=OperationState.SUCCEEDED if n % 4 else OperationState.FAILED,
            code_masked=f"TDAY-****-****-{n:04d}",
            code_digest=hashlib.sha256(f"today-{n}".encode()).hexdigest(),
            amount=Decimal("5.00"),
            finished_at=now,
            duration_ms=110,
        )
        for n in range(40)
    ]
    rows += [
        ProviderOperation(
            campaign=shop,
            user=cashier,
            kind=OperationKind.REDEEM,
            state=OperationState.UNKNOWN if n % 2 else OperationState.NEEDS_REVIEW,
            code_masked=f"OPEN-****-****-{n:04d}",
            code_digest=hashlib.sha256(f"open-{n}-{now.timestamp()}".encode()).hexdigest(),
            amount=Decimal("7.50"),
        )
        for n in range(10)
    ]
    ProviderOperation.objects.bulk_create(rows)
    if not StockSnapshot.objects.filter(campaign=vault).exists():
        snapshots = StockSnapshot.objects.bulk_create(
            StockSnapshot(campaign=vault, taken_at=now - timedelta(hours=h)) for h in range(720)
        )
        StockLevel.objects.bulk_create(
            StockLevel(snapshot=s, vendor=vendor, value=Decimal(value), remaining=500 + i % 50)
            for i, s in enumerate(snapshots)
            for vendor, value in (("Shop A", "10"), ("Shop A", "25"), ("Shop B", "50"), ("Shop C", "20"))
        )


def _columns(model, given: dict[str, str]) -> tuple[str, str]:
    """The INSERT column list and SELECT expressions: ``given`` plus every other column's
    empty value (NULL, '', '{}', its default), so a new NOT NULL column cannot be forgotten."""
    names, exprs = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.column in given:
            expr = given[field.column]
        elif field.null:
            expr = "NULL"
        elif isinstance(field, models.JSONField):
            expr = "'[]'::jsonb" if field.default is list else "'{}'::jsonb"
        elif field.has_default() and not callable(field.default):
            value = field.default
            expr = (
                ("true" if value else "false")
                if isinstance(value, bool)
                else (str(value) if isinstance(value, int | Decimal) else f"'{value}'")
            )
        elif isinstance(field, models.CharField | models.TextField):
            expr = "''"
        else:
            raise RuntimeError(f"bench: no value for {model.__name__}.{field.name}")
        names.append(connection.ops.quote_name(field.column))
        exprs.append(expr)
    return ", ".join(names), ", ".join(exprs)


def load(start: int, stop: int, campaigns, users) -> None:
    """Ledger rows ``start`` < g <= ``stop`` (every tenth a sale with its purchase or allocate
    row), one audit event per ledger row; all before today in Germany."""
    shop, vault, elsewhere = campaigns
    cashier, admin = users["cashier"].pk, users["admin"].pk
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    pick = "((g * 7919) % 100)"
    when = f"(TIMESTAMPTZ '{midnight.isoformat()}' - ((g::bigint * 104729) % 31536000) * INTERVAL '1 second')"
    failed = "((g * 31) % 100 < 5)"
    op = {
        "campaign_id": f"CASE WHEN {pick} < 55 THEN {shop.pk} WHEN {pick} < 70 THEN {vault.pk} ELSE {elsewhere.pk} END",
        "user_id": f"CASE WHEN {pick} < 55 THEN {cashier} END",
        "kind": f"CASE WHEN {pick} < 45 THEN 'check' WHEN {pick} < 55 THEN 'redeem' WHEN {pick} < 70 THEN 'poll' "
        "WHEN g % 2 = 0 THEN 'check' ELSE 'redeem' END",
        "state": f"CASE WHEN {failed} THEN 'failed' ELSE 'succeeded' END",
        "code_masked": "'BNCH-****-****-' || lpad((g % 10000)::text, 4, '0')",
        "code_digest": "md5(g::text) || md5((g + 1)::text)",
        "amount": f"CASE WHEN {pick} >= 45 AND {pick} < 55 THEN 5.00 END",
        "request_data": """jsonb_build_object('code', 'BNCH-****', 'campaign', 'lists-shop')""",
        "response_data": """jsonb_build_object('status', 'ok', 'balance', '20.00')""",
        "error_code": f"CASE WHEN {failed} THEN 'Rejected' ELSE '' END",
        "created_at": when,
        "finished_at": f"{when} + INTERVAL '120 milliseconds'",
        "duration_ms": "80 + g % 100",
    }
    actions = "(ARRAY['token.check','token.redeem','stock.alert_opened','sale.gift_token_sold',"
    actions += "'sale.voucher_allocated','campaign.changed','membership.added','operation.resolved'])"
    audit = {
        "created_at": when,
        "actor_id": f"CASE WHEN {pick} < 55 THEN {cashier} END",
        "actor_name": f"CASE WHEN {pick} < 55 THEN 'lists-cashier' ELSE '' END",
        "action": f"{actions}[(1 + (g * 13) % 8)::int]",
        "campaign_id": op["campaign_id"],
        "object_type": "'provideroperation'",
        "object_id": "g::text",
        "summary": "'Bench event ' || g",
    }
    sale_op = {
        **op,
        "campaign_id": f"CASE WHEN g % 5 = 0 THEN {vault.pk} ELSE {shop.pk} END",
        "user_id": f"CASE WHEN g % 3 = 0 THEN {admin} ELSE {cashier} END",
        "kind": "CASE WHEN g % 5 = 0 THEN 'allocate' ELSE 'purchase' END",
        "amount": "(10 + (g % 5) * 5)::numeric(12, 2)",
    }
    sale = {
        "campaign_id": "o.campaign_id",
        "operation_id": "o.id",
        "seller_id": "o.user_id",
        "kind": "CASE WHEN o.kind = 'allocate' THEN 'digital_voucher' ELSE 'gift_token' END",
        "created_at": "o.created_at",
        "amount": "o.amount",
        "template_name": "CASE WHEN o.kind = 'purchase' THEN 'Birthday' ELSE '' END",
        "vendor": "CASE WHEN o.kind = 'allocate' THEN 'Shop A' ELSE '' END",
        "for_name": "'Customer ' || o.id",
        "email": "'customer' || o.id || '@example.test'",
        "code_masked": "o.code_masked",
        # ~3 kB standing in for the encrypted QR image: the list must never read it.
        "qrcode_png_ciphertext": "repeat(md5(o.id::text), 100)",
        "full_code_ciphertext": "md5(o.id::text)",
    }
    op_table, audit_table, sale_table = (
        connection.ops.quote_name(m._meta.db_table) for m in (ProviderOperation, AuditEvent, Sale)
    )
    op_cols, op_exprs = _columns(ProviderOperation, op)
    sale_op_cols, sale_op_exprs = _columns(ProviderOperation, sale_op)
    audit_cols, audit_exprs = _columns(AuditEvent, audit)
    sale_cols, sale_exprs = _columns(Sale, sale)
    batch = 200_000
    with connection.cursor() as cursor:
        for lo in range(start, stop, batch):
            hi = min(stop, lo + batch)
            series = f"generate_series({lo + 1}::bigint, {hi}::bigint) AS g"  # g * 104729 > 2**31
            cursor.execute(
                f"INSERT INTO {op_table} ({op_cols}) SELECT {op_exprs} FROM {series} WHERE g % 10 <> 0"  # noqa: S608
            )
            cursor.execute(
                f"WITH o AS (INSERT INTO {op_table} ({sale_op_cols}) SELECT {sale_op_exprs} FROM {series} "  # noqa: S608
                f"WHERE g % 10 = 0 RETURNING id, campaign_id, user_id, kind, created_at, amount, code_masked) "
                f"INSERT INTO {sale_table} ({sale_cols}) SELECT {sale_exprs} FROM o"
            )
            cursor.execute(f"INSERT INTO {audit_table} ({audit_cols}) SELECT {audit_exprs} FROM {series}")  # noqa: S608
        cursor.execute("ANALYZE")


def seeded_rows() -> int:
    return ProviderOperation.objects.filter(code_masked__startswith="BNCH-").count()


# --- the pages --------------------------------------------------------------------------------
def pages(campaigns) -> list[tuple[str, str, str]]:
    """(label, who, URL) of every list and export page."""
    _shop, vault, _elsewhere = campaigns
    today = lina_today()
    day = (today - timedelta(days=30)).isoformat()
    # The admin's own "This month" link: local midnights with their offsets.
    month_start = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    ledger, audit, sales = (
        reverse("vouchers:ledger-list"),
        reverse("vouchers:audit-list"),
        reverse("vouchers:sale-list"),
    )
    return [
        ("desk: my redemptions today", "cashier", reverse("vouchers:desk-today")),
        ("desk: day close", "cashier", reverse("vouchers:desk-close")),
        ("operations to review", "admin", reverse("vouchers:operation-review")),
        ("ledger, page 1", "admin", ledger),
        ("ledger, page 100", "admin", ledger + "?page=100"),
        ("ledger, redeems of a day", "admin", ledger + f"?kind=redeem&since={day}&until={day}"),
        ("ledger, state=failed", "admin", ledger + "?state=failed"),
        ("ledger, by duration", "admin", ledger + "?sort=duration_ms"),
        ("audit, page 1", "admin", audit),
        ("audit, page 20", "admin", audit + "?page=20"),
        ("audit, action + since", "admin", audit + f"?action=token&since={today.isoformat()}"),
        ("audit, who", "admin", audit + "?actor_name=LISTS-CASHIER"),
        ("audit, by action", "admin", audit + "?sort=action"),
        ("sales, page 1", "admin", sales),
        ("sales, sold on a day", "admin", sales + f"?sold_after={day}&sold_before={day}"),
        ("sales, by amount", "admin", sales + "?sort=amount"),
        ("day close (admins, a week)", "admin", reverse("vouchers:day-close")),
        ("people", "admin", reverse("vouchers:people-list")),
        ("provider health", "admin", reverse("vouchers:provider-health")),
        ("stock dashboard", "admin", reverse("vouchers:stock-dashboard")),
        (
            "stock detail (history)",
            "admin",
            reverse("vouchers:stock-detail", kwargs={"campaign": vault.slug}),
        ),
        ("home (campaigns)", "admin", reverse("vouchers:home")),
        ("admin: ledger list", "superuser", "/admin/vouchers/provideroperation/"),
        (
            "admin: ledger, state=unknown",
            "superuser",
            "/admin/vouchers/provideroperation/?state__exact=unknown",
        ),
        ("admin: ledger, page 50", "superuser", "/admin/vouchers/provideroperation/?p=50"),
        ("admin: audit list", "superuser", "/admin/vouchers/auditevent/"),
        ("admin: audit, search", "superuser", "/admin/vouchers/auditevent/?q=token.redeem"),
        (
            "admin: audit, this month",
            "superuser",
            "/admin/vouchers/auditevent/?"
            + urlencode({"created_at__gte": str(month_start), "created_at__lt": str(next_month)}),
        ),
        ("export: ledger CSV", "admin", ledger + "?export=csv"),
        ("export: audit CSV", "admin", audit + "?export=csv"),
        ("export: sales CSV", "admin", reverse("vouchers:sale-export")),
        ("export: day close CSV", "admin", reverse("vouchers:day-close-csv")),
        ("export: desk close CSV", "cashier", reverse("vouchers:desk-close-csv")),
    ]


def is_export(label: str) -> bool:
    return label.startswith("export:")


# --- gunicorn ---------------------------------------------------------------------------------
def portal_env(tmp: Path) -> dict[str, str]:
    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": support.database_url(),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/10"),
        "CELERY_BROKER_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/10"),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SANDBOX_ENABLED": "false",
        "PORTAL_VAR_DIR": str(tmp / "var"),
        "DJANGO_STATIC_ROOT": str(tmp / "static"),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LOG_LEVEL": "WARNING",
        "BENCH_DB": db["NAME"],
    }


@contextlib.contextmanager
def gunicorn(tmp: Path):
    env = portal_env(tmp)
    port = free_port()
    process = ManagedProcess(
        "gunicorn",
        [
            BIN / "gunicorn",
            "--config",
            support.ROOT / "deploy" / "gunicorn.conf.py",
            "portal.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            os.devnull,
        ],
        cwd=support.ROOT,
        env=env,
        log=tmp / f"gunicorn-{port}.log",
    ).start()
    try:
        process.wait_until(
            lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200,
            timeout=60,
            ignore=(requests.RequestException,),
            what="gunicorn",
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


class Browser:
    """One signed-in person over HTTP, as a browser behind the TLS proxy."""

    def __init__(self, base: str, username: str):
        self.base = base
        self.http = requests.Session()
        self.http.headers.update({"X-Forwarded-Proto": "https", "Origin": base.replace("http:", "https:")})
        page = self.get(reverse("login"))
        token = _CSRF.search(page.text).group(1)
        response = self.request(
            "POST",
            reverse("login"),
            data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Referer": self.base.replace("http:", "https:") + reverse("login")},
        )
        if "sessionid" not in {c.name for c in self.http.cookies} and not any(
            "session" in c.name for c in self.http.cookies
        ):
            raise RuntimeError(f"login of {username} failed: HTTP {response.status_code}")

    def _unsecure(self):
        # Secure cookies over loopback HTTP: TLS ends at the (simulated) proxy.
        for cookie in self.http.cookies:
            cookie.secure = False

    def request(self, method, path, **kwargs):
        response = self.http.request(method, self.base + path, timeout=60, allow_redirects=False, **kwargs)
        self._unsecure()
        return response

    def get(self, path):
        response = self.request("GET", path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status_code}")
        return response

    def timed(self, path: str, export: bool) -> float:
        t0 = time.perf_counter()
        with self.http.get(self.base + path, timeout=120, allow_redirects=False, stream=True) as response:
            if response.status_code != 200:
                raise RuntimeError(f"GET {path}: HTTP {response.status_code}")
            lines = 0
            for chunk in response.iter_content(8192):
                lines += chunk.count(b"\n")
                if export and lines > EXPORT_ROWS:
                    break  # closing the connection: the rest streams to nobody
        return (time.perf_counter() - t0) * 1000


def measure_http(base: str, page_list, fetches: int) -> dict[str, list[float]]:
    """Per page the median of ``fetches`` fetches in each of ROUNDS rounds (pages interleaved)."""
    browsers = {
        who: Browser(base, f"lists-{name}")
        for who, name in (("cashier", "cashier"), ("admin", "admin"), ("superuser", "root"))
    }
    for label, who, url in page_list:  # warm: templates, caches, each worker's connection
        for _ in range(3):
            browsers[who].timed(url, is_export(label))
    rounds: dict[str, list[float]] = {label: [] for label, _w, _u in page_list}
    for _round in range(ROUNDS):
        for label, who, url in page_list:
            samples = [browsers[who].timed(url, is_export(label)) for _ in range(fetches)]
            rounds[label].append(statistics.median(samples))
    return rounds


def count_queries(page_list, users) -> dict[str, int]:
    """SQL statements per page, counted in this process with the test client."""
    clients = {}
    for who, user in users.items():
        clients[who] = Client(HTTP_X_FORWARDED_PROTO="https")
        clients[who].force_login(user)
    counts = {}
    for label, who, url in page_list:
        clients[who].get(url)  # warm (session, caches)
        with CaptureQueriesContext(connection) as queries:
            response = clients[who].get(url)
            if response.status_code != 200:
                raise RuntimeError(f"{label}: HTTP {response.status_code} for {url}")
            if response.streaming:
                # The statements that start the file (a whole million-row file would only add
                # the cursor's further FETCHes, which are chunks of one query, not more queries).
                lines = 0
                for chunk in response.streaming_content:
                    lines += chunk.count(b"\n")
                    if lines > EXPORT_ROWS:
                        break
                response.close()
        counts[label] = len(queries)
    return counts


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def _reset_peak_rss() -> int:
    """Reset the process's peak RSS (VmHWM) to its current RSS; return that RSS.

    tracemalloc would be more precise but slows the export tenfold; the peak resident set of
    this one process while the file streams is what a gunicorn worker would hold too."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


def _peak_rss() -> int:
    return _status_kb("VmHWM")


def export_memory(users, campaigns) -> list[tuple[str, int, int, float]]:
    """(export, rows, peak RSS growth in bytes, seconds) for files of up to MEMORY_ROWS rows."""
    shop = campaigns[0]
    big = seeded_rows()
    today = lina_today()

    def since(share: float) -> str:
        # The day from which a filter with ``share`` of the rows per day gives ~MEMORY_ROWS rows.
        days = min(400, int(MEMORY_ROWS * 365 / max(1.0, share * big)) + 1)
        return (today - timedelta(days=days)).isoformat()

    ledger, audit = reverse("vouchers:ledger-list"), reverse("vouchers:audit-list")
    exports = [
        ("sales CSV (all)", reverse("vouchers:sale-export")),
        (
            "ledger CSV (shop checks)",
            ledger + f"?export=csv&campaign={shop.pk}&kind=check&since={since(0.405)}",
        ),
        ("audit CSV (token.check)", audit + f"?export=csv&action=token.check&since={since(0.125)}"),
    ]
    factory = RequestFactory()
    results = []
    for label, url in exports:
        request = factory.get(url)
        request.user = users["admin"]
        request.session = {}
        match = resolve(url.split("?")[0])
        before = _reset_peak_rss()
        t0 = time.perf_counter()
        response = match.func(request, *match.args, **match.kwargs)
        lines = 0
        with open(os.devnull, "wb") as sink:
            for chunk in response.streaming_content:
                sink.write(chunk)
                lines += chunk.count(b"\n")
        seconds = time.perf_counter() - t0
        peak = _peak_rss() - before
        results.append((label, lines - 1, peak, seconds))
    return results


# --- main -------------------------------------------------------------------------------------
def _terminate(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)  # so the finally blocks stop gunicorn too
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="100,000 rows instead of 1,000,000 (development)"
    )
    parser.add_argument("--rows", type=int, default=None, help="ledger rows at the big size")
    parser.add_argument("--keep", action="store_true", help="keep the big database and reuse it next run")
    parser.add_argument("--fetches", type=int, default=5, help="fetches per page and round (default 5)")
    parser.add_argument("--no-memory", action="store_true", help="skip the exports' memory measurement")
    parser.add_argument(
        "--only",
        metavar="PATTERN",
        default="",
        help="only the pages whose label contains PATTERN (case-insensitive; development runs)",
    )
    args = parser.parse_args()
    if not support.is_postgres():
        print("List pages benchmark SKIPPED: it needs PostgreSQL (DATABASE_URL=postgres://...).")
        return SKIPPED
    support.silence_logs()
    support.serve_like_production()
    big = args.rows or (100_000 if args.quick else 1_000_000)
    started = time.monotonic()
    base_name = settings.DATABASES["default"]["NAME"]
    small_db, big_db = f"{base_name}_bl{SMALL_ROWS}", f"{base_name}_bl{big}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-lists-"))
    results = {}
    try:
        # Manifest static files, as production serves them (once for both sizes).
        env = portal_env(tmp)
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=support.ROOT,
            env=env,
            check=True,
        )
        for size, name in ((SMALL_ROWS, small_db), (big, big_db)):
            kept = use_database(name, fresh=not (args.keep and size == big))
            campaigns, users = people_and_campaigns()
            t0 = time.monotonic()
            have = seeded_rows()
            if have != size:
                if have:  # a kept database of another size: start again
                    use_database(name, fresh=True)
                    campaigns, users = people_and_campaigns()
                load(0, size, campaigns, users)
            seconds = time.monotonic() - t0
            fixed_rows(campaigns[0], campaigns[1], users["cashier"])
            page_list = [p for p in pages(campaigns) if args.only.lower() in p[0].lower()]
            queries = count_queries(page_list, users)
            with gunicorn(tmp) as base:
                times = measure_http(base, page_list, args.fetches)
            results[size] = {
                "queries": queries,
                "times": times,
                "ledger": ProviderOperation.objects.count(),
                "audit": AuditEvent.objects.count(),
                "sales": Sale.objects.count(),
                "load": (seconds, kept and have == size),
            }
            if size == big:
                # The pages first (printed at once), then the slow part: whole files streamed.
                missed = report_pages(results, SMALL_ROWS, big, page_list)
                if not args.no_memory:
                    report_memory(export_memory(users, campaigns), big)
            if size != big or not args.keep:
                drop_database(name)
    finally:
        connection.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"  pages missing the target  : {', '.join(missed) or 'none'}")
    print(f"  elapsed                   : {time.monotonic() - started:.0f} s")
    print("  result                    :", "TARGET MISSED" if missed else "targets met")
    return 1 if missed else 0


def report_pages(results, small, big, page_list) -> list[str]:
    s, b = results[small], results[big]
    print("List pages benchmark: every list and export page through gunicorn, small vs. big database")
    print(
        "  database          : PostgreSQL; gunicorn --config deploy/gunicorn.conf.py, DJANGO_ENV=production"
    )
    for size in (small, big):
        r = results[size]
        load_seconds, reused = r["load"]
        print(
            f"  rows at {size:>9,} : ledger {r['ledger']:,}, audit {r['audit']:,}, sales {r['sales']:,}"
            f" ({'kept from an earlier run' if reused else f'seeded in {load_seconds:.0f} s'})"
        )
    print(f"  machine           : {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(
        f"  target            : p50 <= {TARGET_MS:.0f} ms per page at {big:,} rows (exports: to their first "
        f"{EXPORT_ROWS} rows), queries equal at both sizes"
    )
    print(
        f"  {'page':<32} {'queries':>9}   {'ms at ' + format(small, ','):>16}   "
        f"{'ms at ' + format(big, ',') + ' (min / median / max)':>34}"
    )
    missed = []
    for label, _who, _url in page_list:
        q1, q2 = s["queries"][label], b["queries"][label]
        t1 = statistics.median(s["times"][label])
        lo, med, hi = min(b["times"][label]), statistics.median(b["times"][label]), max(b["times"][label])
        notes = []
        if q1 != q2:
            notes.append("queries changed")
        if med > TARGET_MS:
            notes.append(f"over by {med - TARGET_MS:.0f} ms")
        if notes:
            missed.append(label)
        print(
            f"  {label:<32} {q1:>3} -> {q2:<3}   {t1:>16.1f}   {lo:>9.1f} / {med:>7.1f} / {hi:>7.1f}"
            f"{'  <- ' + ', '.join(notes) if notes else ''}"
        )
    sys.stdout.flush()
    return missed


def report_memory(memory, big) -> None:
    print(f"  exports' peak memory while streaming (RSS growth of the process, at {big:,} rows):")
    for label, rows, peak, seconds in memory:
        print(
            f"    {label:<28} {rows:>9,} rows  peak {peak / 2**20:6.1f} MiB  ({seconds:.1f} s for the whole file)"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
