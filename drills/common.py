"""What every failure drill does: stack up, load on, fault in, load off, settle, check.

A drill is a function ``inject(ctx)`` run while 50 cashiers redeem; :func:`run_drill` starts
the stack, the load and any side work (a bulk sale through the worker, Allsafe allocations),
calls ``inject`` at the chosen moment, then clears the faults, lets reconcile run (it sends the
beat's tasks itself instead of waiting up to 5 minutes), waits until nothing settles any more
and checks the invariants. Everything is bounded in time; the stack stops in ``finally``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drills.invariants import Report, check_stack
from drills.load_test import Figures, Load
from drills.stack import Stack

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Context:
    stack: Stack
    load: Load
    notes: list[str] = field(default_factory=list)
    bulk_ids: list[int] = field(default_factory=list)
    side_threads: list[threading.Thread] = field(default_factory=list)

    def note(self, text: str) -> None:
        elapsed = time.monotonic() - self.load.figures.started
        line = f"[{elapsed:5.1f} s] {text}"
        self.notes.append(line)
        print(line, flush=True)


def bulk_sale(ctx: Context, rows: int, *, amount: str = "10.00") -> int:
    """Upload and start a bulk sale of ``rows`` gift tokens, as a marketing manager would."""
    from django.contrib.auth import get_user_model

    from vouchers.models import Campaign
    from vouchers.services.bulk_sales import bulk_sale_create, bulk_sale_start

    campaign = Campaign.objects.get(slug="drill-lina")
    admin = get_user_model().objects.get(username="drill-admin")
    lines = ["amount,template,layout,from,for,email"] + [f"{amount},Allgemein,,,," for _ in range(rows)]
    bulk = bulk_sale_create(
        campaign=campaign, user=admin, filename="drill.csv", data=("\n".join(lines) + "\n").encode()
    )
    bulk_sale_start(bulk_sale=bulk, user=admin)
    ctx.bulk_ids.append(bulk.pk)
    ctx.note(f"bulk sale #{bulk.pk} of {rows} rows queued")
    return bulk.pk


def bulk_state(bulk_id: int) -> dict:
    from django.db import close_old_connections

    from vouchers.models import BulkSale
    from vouchers.services.bulk_sales import bulk_sale_progress

    close_old_connections()
    return bulk_sale_progress(bulk_sale=BulkSale.objects.get(pk=bulk_id))


def allocations(ctx: Context, count: int, *, every: float = 1.0) -> None:
    """Allocate Allsafe vouchers one by one in a side thread, as the allocate page would."""

    def run():
        from django.contrib.auth import get_user_model
        from django.db import close_old_connections, connections

        from vouchers.models import Campaign
        from vouchers.services.sales import digital_voucher_allocate, new_request_token

        try:
            campaign = Campaign.objects.get(slug="drill-allsafe")
            admin = get_user_model().objects.get(username="drill-admin")
            for _ in range(count):
                close_old_connections()
                try:
                    digital_voucher_allocate(
                        campaign=campaign,
                        user=admin,
                        request_token=new_request_token(),
                        vendor="Checkers",
                        value=Decimal("50"),
                    )
                except Exception as exc:  # the drill may have cut the database: count, go on
                    ctx.note(f"allocate raised {type(exc).__name__}")
                time.sleep(every)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ctx.side_threads.append(thread)


def settle(ctx: Context, *, seconds: float, stale_pending: bool = False) -> None:
    """Send the beat's settling tasks until nothing is open (or ``seconds`` pass).

    ``stale_pending``: also wait out the cut-off after which a pending call whose process died
    is called interrupted (services/operations.py: connect + read timeout + 60 s).
    """
    from django.db import close_old_connections

    from vouchers.models import BulkSale, ProviderOperation

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            ctx.stack.reconcile_now()
            ctx.stack.resume_stalled_now()
        time.sleep(5)
        try:
            close_old_connections()
            open_redeems = ProviderOperation.objects.filter(
                campaign__slug="drill-lina", kind="redeem", state__in=["pending", "unknown"]
            ).count()
            pending = ProviderOperation.objects.filter(state="pending").count()
            active_bulk = BulkSale.objects.filter(state__in=["queued", "running"]).count()
        except Exception as exc:
            ctx.note(f"settle: database not answering ({type(exc).__name__})")
            continue
        if not open_redeems and not pending and not active_bulk:
            ctx.note("settled: no open redeems, no pending calls, no active bulk sale")
            return
        if not stale_pending and not open_redeems and not active_bulk:
            return
    ctx.note("settle: time is up with work still open (reported below)")


def run_drill(
    name: str,
    inject: Callable[[Context], None],
    *,
    seconds: float = 60,
    inject_at: float = 10,
    bulk_rows: int = 0,
    allocate: int = 0,
    settle_seconds: float = 120,
    stale_pending: bool = False,
    after_load: Callable[[Context], None] | None = None,
) -> int:
    print(f"=== drill {name}: {seconds:.0f} s of load, fault at {inject_at:.0f} s ===", flush=True)
    figures: Figures | None = None
    report: Report | None = None
    with Stack() as stack:
        load = Load(stack, seconds=seconds)
        ctx = Context(stack=stack, load=load)
        load.start()
        try:
            if bulk_rows:
                bulk_sale(ctx, bulk_rows)
            if allocate:
                allocations(ctx, allocate, every=max(0.5, seconds / max(allocate, 1) / 2))
            time.sleep(max(0.0, inject_at - (time.monotonic() - load.figures.started)))
            inject(ctx)
        finally:
            figures = load.wait()
            for thread in ctx.side_threads:
                thread.join(timeout=60)
        ctx.note("load finished")
        with contextlib.suppress(Exception):
            stack.control("DELETE", "faults")
        if after_load:
            after_load(ctx)
        settle(ctx, seconds=settle_seconds, stale_pending=stale_pending)
        report = check_stack(stack)
        bulk = [bulk_state(pk) for pk in ctx.bulk_ids]
        RESULTS_DIR.mkdir(exist_ok=True)
        for proc in ("web", "worker", "beat"):  # for the post-mortem; the temp dir goes away
            (RESULTS_DIR / f"{name}-{proc}.log").write_text(stack.log_tail(proc, 5000))
    restarts = dict(stack.restarts)
    print(f"--- drill {name} ---")
    if restarts:
        print("  processes that died and were restarted by the supervisor: " + str(restarts))
    for line in figures.lines():
        print(line)
    for b in bulk:
        print(
            f"  bulk sale: {b['state']}, {b['succeeded']} sold, {b['review']} for review, "
            f"{b['failed']} failed of {b['valid']}" + (f" (note: {b['note']})" if b["note"] else "")
        )
    for line in report.lines():
        print(line)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(
        json.dumps(
            {
                "drill": name,
                "at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "load": figures.summary(),
                "bulk": [
                    {k: b[k] for k in ("state", "succeeded", "review", "failed", "valid")} for b in bulk
                ],
                "invariants": {
                    k: getattr(report, k)
                    for k in (
                        "applied",
                        "succeeded",
                        "failed",
                        "unknown_resolved",
                        "unknown_open",
                        "lost",
                        "duplicated",
                        "phantom",
                        "balance_mismatches",
                        "reused_tokens",
                    )
                },
                "per_kind": report.per_kind,
                "restarts": restarts,
                "ok": report.ok,
                "notes": ctx.notes,
            },
            indent=2,
        )
    )
    print(f"drill {name}: {'PASSED' if report.ok else 'FAILED'}")
    return 0 if report.ok else 1


def cli(name: str, run: Callable[..., int], default_seconds: float = 60) -> int:
    parser = argparse.ArgumentParser(description=f"Failure drill: {name}")
    parser.add_argument("--seconds", type=float, default=default_seconds, help="how long the load runs")
    args = parser.parse_args()
    return run(seconds=args.seconds)
