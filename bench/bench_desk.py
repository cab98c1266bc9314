"""Benchmark of the cashier desk (issue 5): check and redeem through the portal vs. the bare client.

Run: ``.venv/bin/python bench/bench_desk.py`` (SQLite in a temporary directory), or with
``DATABASE_URL=postgres://...`` (a throwaway ``<name>_benchrun`` database) and ``REDIS_URL``.

Prints, in one run on one machine:
1. the median time of a check and of a redeem THROUGH THE PORTAL — the Django test client, logged
   in as a cashier, POSTing to the desk views, so URL routing, every middleware (sessions in the
   database, auth, CSRF, CSP, axes), the permission and campaign-scope checks, the form, the
   services (claim → call → record, ledger rows, audit row, reconcile ticket) and the template
   are all in the measured time — versus the median time of the same call made directly with
   the real LINA client, against the same sandbox with 50 ms added latency per provider call.
   The ratios portal / direct must be at most 1.10.
2. the number of SQL queries per redeem POST for several redeems, before and after 10,000 more
   ledger rows are written: it must be the same number every time.

The only thing not measured is the browser's own work (network to the web server, HTML parsing).
The redeem POST answers with a redirect to the result page; the GET of that page is timed too
and printed beside it, but the ratio compares the POST (the request that makes the call).
Portal and direct calls are interleaved (and their order alternates) so drift hits both alike.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from decimal import Decimal

import support
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from vouchers.access import roles
from vouchers.models import Campaign, Membership, ProviderOperation
from vouchers.models.ledger import OperationKind, OperationState
from vouchers.services.providers import provider_client
from vouchers.services.tokens import token_check
from vouchers.values.codes import code_digest, mask_code

TARGET_RATIO = 1.10
LATENCY_MS = 50
PORTAL_CODE = "BENCHDESKPORTAL1"
DIRECT_CODE = "BENCHDESKDIRECT1"
AMOUNT = Decimal("1.00")


def hidden(body: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', body)
    if match is None:
        raise RuntimeError(f"the desk page has no hidden field {name!r}; the check did not show a card")
    return match.group(1)


class Desk:
    """A logged-in cashier at the desk of one campaign, driving the views with the test client."""

    def __init__(self, campaign: Campaign, user):
        self.client = Client()
        self.client.force_login(user)
        self.check_url = reverse("vouchers:desk-check", kwargs={"campaign": campaign.slug})
        self.redeem_url = reverse("vouchers:desk-redeem", kwargs={"campaign": campaign.slug})

    def check(self, code: str) -> str:
        response = self.client.post(self.check_url, {"code": code})
        body = response.content.decode()
        if response.status_code != 200 or 'id="token-card"' not in body:
            raise RuntimeError(f"portal check failed: HTTP {response.status_code}")
        return body

    def redeem(self, body: str) -> str:
        form = {
            "amount": f"{AMOUNT:.2f}",
            "code": hidden(body, "code"),
            "check": hidden(body, "check"),
            "request_token": hidden(body, "request_token"),
        }
        response = self.client.post(self.redeem_url, form)
        if response.status_code != 302:
            raise RuntimeError(f"portal redeem was not accepted: HTTP {response.status_code}")
        return response["Location"]

    def result(self, location: str) -> None:
        response = self.client.get(location)
        if response.status_code != 200 or 'id="new-balance"' not in response.content.decode():
            raise RuntimeError(f"redeem did not succeed: HTTP {response.status_code}")


def setup(sandbox_url: str):
    campaign = Campaign(
        name="Bench shop",
        slug="bench-shop",
        provider="lina",
        base_url=f"{sandbox_url}/lina/extern/tokenapi",
        api_username="demo-shop",
        is_live=True,
    )
    campaign.api_password = "demo-lina-password"  # noqa: S105 (the sandbox demo account)
    campaign.api_shared_key = "demo-lina-shared-key"
    campaign.save()
    user = get_user_model().objects.create_user("bench-cashier", password="bench-password-unused")  # noqa: S106
    user.groups.add(Group.objects.get(name=roles.CASHIER))
    Membership.objects.create(user=user, campaign=campaign)
    return campaign, user


def grow_ledger(campaign: Campaign, user, rows: int) -> None:
    """Older ledger rows of this campaign, this cashier and this very code (the worst case)."""
    digest, masked = code_digest(PORTAL_CODE), mask_code(PORTAL_CODE)
    batch = []
    for n in range(rows):
        kind = OperationKind.REDEEM if n % 2 else OperationKind.CHECK
        batch.append(
            ProviderOperation(
                campaign=campaign,
                user=user,
                kind=kind,
                state=OperationState.SUCCEEDED,
                code_masked=masked,
                code_digest=digest,
                amount=AMOUNT if kind == OperationKind.REDEEM else None,
            )
        )
    ProviderOperation.objects.bulk_create(batch, batch_size=2000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40, help="timed rounds (default 40)")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    support.silence_logs()
    support.serve_like_production()

    started = time.monotonic()
    with support.throwaway_database(), support.running_sandbox(LATENCY_MS) as sandbox:
        sandbox.store.lina_tokens.clear()  # only our two tokens, big enough for every redeem
        from sandbox.lina import new_token

        for code in (PORTAL_CODE, DIRECT_CODE):
            new_token(sandbox.store, account="demo-shop", code=code, value=Decimal("100000.00"))

        campaign, user = setup(sandbox.base_url)
        desk = Desk(campaign, user)
        direct = provider_client(campaign)  # the same real LinaClient the portal builds per request

        samples = {
            k: []
            for k in (
                "portal_check",
                "direct_check",
                "service_check",
                "portal_redeem",
                "direct_redeem",
                "result",
            )
        }
        for n in range(args.warmup + args.iterations):
            timed = n >= args.warmup
            portal_first = n % 2 == 0
            for step in ("portal", "direct") if portal_first else ("direct", "portal"):
                if step == "portal":
                    t0 = time.perf_counter()
                    body = desk.check(PORTAL_CODE)
                    t1 = time.perf_counter()
                    location = desk.redeem(body)
                    t2 = time.perf_counter()
                    desk.result(location)
                    t3 = time.perf_counter()
                    if timed:
                        samples["portal_check"].append(t1 - t0)
                        samples["portal_redeem"].append(t2 - t1)
                        samples["result"].append(t3 - t2)
                else:
                    t0 = time.perf_counter()
                    info = direct.check(DIRECT_CODE)
                    t1 = time.perf_counter()
                    outcome = direct.redeem(DIRECT_CODE, AMOUNT)
                    t2 = time.perf_counter()
                    if not info.valid or outcome.balance_after is None:
                        raise RuntimeError("direct redeem did not succeed")
                    token_check(campaign=campaign, user=user, code=DIRECT_CODE)  # the service alone
                    t3 = time.perf_counter()
                    if timed:
                        samples["direct_check"].append(t1 - t0)
                        samples["direct_redeem"].append(t2 - t1)
                        samples["service_check"].append(t3 - t2)

        # Queries per redeem POST, at the ledger size of now and after 10,000 more rows.
        counts: list[tuple[int, int]] = []
        for grow in (0, 0, 0, 10_000, 0, 0):
            if grow:
                grow_ledger(campaign, user, grow)
            body = desk.check(PORTAL_CODE)
            with CaptureQueriesContext(connection) as queries:
                desk.result(desk.redeem(body))
                redeem_queries = len(queries)
            counts.append((ProviderOperation.objects.count(), redeem_queries))
        # The GET of the result page is inside the capture too; count the POST alone as well.
        post_counts = []
        for _ in range(3):
            body = desk.check(PORTAL_CODE)
            with CaptureQueriesContext(connection) as queries:
                desk.redeem(body)
            post_counts.append(len(queries))

        journal_redeems = sum(1 for e in sandbox.store.journal if e["operation"] == "redeem" and e["applied"])
        portal_redeems = ProviderOperation.objects.filter(
            kind=OperationKind.REDEEM, state=OperationState.SUCCEEDED, request_token__isnull=False
        ).count()
        db_label = support.database_label()
        cache_backend = support.settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]

    medians = {k: support.median_ms(v) for k, v in samples.items()}
    check_ratio = medians["portal_check"] / medians["direct_check"]
    redeem_ratio = medians["portal_redeem"] / medians["direct_redeem"]
    query_counts = {q for _rows, q in counts}
    print("Cashier desk benchmark (issue 5): through the portal vs. a direct LINA client call")
    print(f"  database / cache                 : {db_label} / {cache_backend}")
    print(f"  sandbox latency per provider call: {LATENCY_MS} ms (in-process sandbox, 127.0.0.1)")
    print(
        f"  machine                          : {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"  timed rounds                     : {args.iterations} (after {args.warmup} warm-up)")
    print(
        f"  median check   direct / portal   : {medians['direct_check']:.1f} ms / {medians['portal_check']:.1f} ms"
    )
    print(
        f"  median redeem  direct / portal   : {medians['direct_redeem']:.1f} ms / {medians['portal_redeem']:.1f} ms"
    )
    print(
        f"  median check service alone       : {medians['service_check']:.1f} ms "
        "(token_check without request, middleware or template)"
    )
    print(f"  median result page after redeem  : {medians['result']:.1f} ms (GET after the redirect)")
    print(f"  ratio check  portal/direct       : {check_ratio:.3f}  (target <= {TARGET_RATIO:.2f})")
    print(f"  ratio redeem portal/direct       : {redeem_ratio:.3f}  (target <= {TARGET_RATIO:.2f})")
    print(
        f"  ratio redeem+result/direct       : "
        f"{(medians['portal_redeem'] + medians['result']) / medians['direct_redeem']:.3f}  (informative)"
    )
    print("  queries per redeem (POST + result page GET), by ledger rows:")
    for rows, q in counts:
        print(f"    {rows:>7} rows: {q}")
    print(f"  queries per redeem POST alone    : {post_counts}")
    print(
        f"  redeems applied in sandbox       : {journal_redeems} (portal ledger: {portal_redeems} + direct)"
    )
    constant = len(query_counts) == 1 and len(set(post_counts)) == 1
    ok = check_ratio <= TARGET_RATIO and redeem_ratio <= TARGET_RATIO and constant
    print(f"  elapsed                          : {time.monotonic() - started:.1f} s")
    print("  result                           :", "targets met" if ok else "TARGET MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
