"""Benchmark of the list pages at 10,000 and at 1,000,000 ledger rows (PRODUCT.md, "Speed").

Run: ``DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench .venv/bin/python bench/bench_lists.py``
(a throwaway ``<name>_benchrun`` database; the rows go in with COPY). On SQLite it refuses the
million rows and exits with status 77 ("skipped") unless ``--rows`` is given (e.g. ``--rows 100000``).

"List pages stay fast and use a constant number of queries at a million ledger rows": every list
page on main is fetched through the Django test client, logged in as the role that uses it, at
10,000 ledger rows and again after growing the ledger to ``--rows``; for each page the number of
SQL queries (must be equal at both sizes) and the median time of 5 fetches are printed.

The rows look like a year of use: spread over 365 days, 70 % in the user's two campaigns and
30 % in a campaign they do not belong to (so scoping filters for real), checks, redeems and polls,
mostly succeeded, some failed; plus one audit event per four ledger rows. What a page shows is the
same at both sizes: 40 redeems by the cashier today and 10 unresolved operations are inserted
first, every bulk row is older than today. ANALYZE runs after each load, as autovacuum would.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from datetime import timedelta
from decimal import Decimal

import support
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from vouchers.access import roles
from vouchers.models import AuditEvent, Campaign, Membership, ProviderOperation
from vouchers.models.ledger import OperationKind, OperationState
from vouchers.services.tokens import lina_today

SKIPPED = 77
BASE_ROWS = 10_000
FETCHES = 5
SLOW_MS = 500  # a page slower than this at the big size is reported as slow

OP_COLUMNS = (
    "campaign_id",
    "user_id",
    "kind",
    "state",
    "code_masked",
    "code_digest",
    "amount",
    "request_data",
    "response_data",
    "error_code",
    "error_message",
    "created_at",
    "finished_at",
    "duration_ms",
    "resolution_note",
)
AUDIT_COLUMNS = (
    "created_at",
    "actor_id",
    "actor_name",
    "action",
    "campaign_id",
    "object_type",
    "object_id",
    "summary",
    "data",
)


def setup():
    def campaign(slug, provider):
        c = Campaign(
            name=slug.title(), slug=slug, provider=provider, base_url="https://example.test", is_live=True
        )
        c.save()
        return c

    shop, vault, elsewhere = (
        campaign("lists-shop", "lina"),
        campaign("lists-vault", "allsafe"),
        campaign("elsewhere", "lina"),
    )
    users = {}
    for name, role, campaigns in (
        ("cashier", roles.CASHIER, [shop]),
        ("admin", roles.CAMPAIGN_ADMIN, [shop, vault]),
    ):
        user = get_user_model().objects.create_user(f"lists-{name}", is_staff=role in roles.STAFF_ROLES)
        user.groups.add(Group.objects.get(name=role))
        for c in campaigns:
            Membership.objects.create(user=user, campaign=c)
        users[name] = user
    # The Django admin's ledger and audit lists are for superusers (no role has their model permissions).
    users["superuser"] = get_user_model().objects.create_user("lists-root", is_staff=True, is_superuser=True)
    return (shop, vault, elsewhere), users


def fixed_rows(shop, cashier) -> None:
    """What the pages show: 40 redeems by the cashier today, 10 unresolved operations."""
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
            code_digest=hashlib.sha256(f"open-{n}".encode()).hexdigest(),
            amount=Decimal("7.50"),
        )
        for n in range(10)
    ]
    ProviderOperation.objects.bulk_create(rows)
    ProviderOperation.objects.filter(created_at__gte=now - timedelta(minutes=5)).update(created_at=now)


def generated(count: int, start: int, campaigns, users):
    """Ledger rows and audit events of the past year (all before today in Germany)."""
    shop, vault, elsewhere = campaigns
    rng = random.Random(start)
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    ops, events = [], []
    for n in range(start, start + count):
        pick = rng.random()
        if pick < 0.45:
            campaign, kind, user = shop, OperationKind.CHECK, users["cashier"]
        elif pick < 0.55:
            campaign, kind, user = shop, OperationKind.REDEEM, users["cashier"]
        elif pick < 0.70:
            campaign, kind, user = vault, OperationKind.POLL, None
        else:
            campaign, kind, user = elsewhere, rng.choice([OperationKind.CHECK, OperationKind.REDEEM]), None
        state = OperationState.FAILED if rng.random() < 0.05 else OperationState.SUCCEEDED
        created = midnight - timedelta(seconds=rng.randrange(365 * 86400))
        ops.append(
            (
                campaign.pk,
                user.pk if user else None,
                kind,
                state,
                f"BNCH-****-****-{n % 10000:04d}",
                hashlib.blake2b(str(n).encode(), digest_size=32).hexdigest(),
                Decimal("5.00") if kind == OperationKind.REDEEM else None,
                "{}",
                "{}",
                "" if state == OperationState.SUCCEEDED else "Rejected",
                "",
                created,
                created + timedelta(milliseconds=120),
                120,
                "",
            )
        )
        if n % 4 == 0:
            events.append(
                (
                    created,
                    user.pk if user else None,
                    user.username if user else "",
                    f"token.{kind}" if kind != OperationKind.POLL else "stock.alert_opened",
                    campaign.pk,
                    "provideroperation",
                    str(n),
                    f"Bench event {n}",
                    "{}",
                )
            )
    return ops, events


def sqlite_value(value):
    """What Django itself would store in SQLite for a datetime or a Decimal."""
    if hasattr(value, "tzinfo"):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def load(count: int, start: int, campaigns, users, batch: int = 50_000) -> None:
    for offset in range(0, count, batch):
        ops, events = generated(min(batch, count - offset), start + offset, campaigns, users)
        if support.is_postgres():
            with connection.cursor() as cursor:
                raw = cursor.cursor  # psycopg 3: COPY, much faster than INSERTs
                with raw.copy(
                    f"COPY vouchers_provideroperation ({', '.join(OP_COLUMNS)}) FROM STDIN"
                ) as copy:
                    for row in ops:
                        copy.write_row(row)
                with raw.copy(f"COPY vouchers_auditevent ({', '.join(AUDIT_COLUMNS)}) FROM STDIN") as copy:
                    for row in events:
                        copy.write_row(row)
        else:  # plain INSERTs: bulk_create would overwrite created_at (auto_now_add)
            with connection.cursor() as cursor:
                for table, columns, rows in (
                    ("vouchers_provideroperation", OP_COLUMNS, ops),
                    ("vouchers_auditevent", AUDIT_COLUMNS, events),
                ):
                    cursor.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",  # noqa: S608 (constants)
                        [tuple(sqlite_value(v) for v in row) for row in rows],
                    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def pages(campaigns):
    _shop, vault, _elsewhere = campaigns
    today = lina_today().isoformat()
    return [
        ("desk: my redemptions today", "cashier", reverse("vouchers:desk-today")),
        ("operations to review", "admin", reverse("vouchers:operation-review")),
        ("audit list, page 1", "admin", reverse("vouchers:audit-list")),
        ("audit list, page 20", "admin", reverse("vouchers:audit-list") + "?page=20"),
        ("audit list, filtered", "admin", reverse("vouchers:audit-list") + f"?action=token&since={today}"),
        ("audit list, by action", "admin", reverse("vouchers:audit-list") + "?sort=action"),
        ("stock dashboard", "admin", reverse("vouchers:stock-dashboard")),
        ("stock detail", "admin", reverse("vouchers:stock-detail", kwargs={"campaign": vault.slug})),
        ("home (campaigns)", "admin", reverse("vouchers:home")),
        ("provider health", "admin", reverse("vouchers:provider-health")),
        ("admin: ledger list", "superuser", "/admin/vouchers/provideroperation/"),
        (
            "admin: ledger, state=unknown",
            "superuser",
            "/admin/vouchers/provideroperation/?state__exact=unknown",
        ),
        ("admin: audit list", "superuser", "/admin/vouchers/auditevent/"),
    ]


def measure(page_list, clients) -> dict[str, tuple[int, float, list[dict]]]:
    results = {}
    for label, who, url in page_list:
        client = clients[who]
        response = client.get(url)  # warm: templates, session, caches
        if response.status_code != 200:
            raise RuntimeError(f"{label}: HTTP {response.status_code} for {url}")
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        count = len(queries)  # now: the next request clears the connection's query log
        slowest = sorted(queries.captured_queries, key=lambda q: float(q["time"]), reverse=True)[:3]
        times = []
        for _ in range(FETCHES):
            t0 = time.perf_counter()
            client.get(url)
            times.append(time.perf_counter() - t0)
        results[label] = (count, support.median_ms(times), slowest)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=None, help="ledger rows at the big size (default 1,000,000)"
    )
    args = parser.parse_args()
    support.silence_logs()
    support.serve_like_production()
    if not support.is_postgres() and args.rows is None:
        print(
            "List pages benchmark SKIPPED: a million rows needs PostgreSQL (DATABASE_URL); on SQLite give --rows, e.g. --rows 100000."
        )
        return SKIPPED
    big = args.rows or 1_000_000
    started = time.monotonic()
    with support.throwaway_database():
        campaigns, users = setup()
        fixed_rows(campaigns[0], users["cashier"])
        clients = {}
        for who, user in users.items():
            clients[who] = Client()
            clients[who].force_login(user)
        page_list = pages(campaigns)
        load(BASE_ROWS, 0, campaigns, users)
        small = measure(page_list, clients)
        small_rows = ProviderOperation.objects.count()
        t0 = time.monotonic()
        load(big - BASE_ROWS, BASE_ROWS, campaigns, users)
        load_seconds = time.monotonic() - t0
        large = measure(page_list, clients)
        large_rows = ProviderOperation.objects.count()
        audit_rows = AuditEvent.objects.count()
        db_label = support.database_label()

    print("List pages benchmark: queries and median time per page, small vs. big ledger")
    print(f"  database                         : {db_label}")
    print(
        f"  ledger rows                      : {small_rows:,} vs {large_rows:,} ({audit_rows:,} audit events at the big size)"
    )
    print(f"  loading {large_rows - small_rows:,} rows             : {load_seconds:.0f} s")
    print(
        f"  machine                          : {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"  {'page':<30} {'queries':>12} {'median ms':>20}")
    equal, slow = True, []
    for label, _who, _url in page_list:
        q1, t1, _ = small[label]
        q2, t2, _ = large[label]
        equal &= q1 == q2
        if t2 > SLOW_MS:
            slow.append(label)
        mark = "" if q1 == q2 else "  <- query count changed"
        print(f"  {label:<30} {q1:>5} -> {q2:<5} {t1:>9.1f} -> {t2:<9.1f}{mark}")
    for label in slow:
        print(f"  slowest queries of {label!r} at the big size:")
        for query in large[label][2]:
            print(f"    {float(query['time']) * 1000:7.1f} ms  {query['sql'][:150]}")
    print(f"  query counts equal at both sizes : {'yes' if equal else 'NO'}")
    print(f"  pages slower than {SLOW_MS} ms          : {', '.join(slow) or 'none'}")
    print(f"  elapsed                          : {time.monotonic() - started:.0f} s")
    ok = equal and not slow
    print("  result                           :", "targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
