"""Drill: the stack's Redis (cache, sessions' cache, LINA session hashes, broker) is stopped
for 30 s while cashiers redeem, stock is polled and a bulk sale runs, then started again
empty (no persistence: queued task messages are gone too).

Expected: desk pages answer with a clear message instead of a server error; no redeem is
lost or doubled; the bulk sale stops (provider unavailable) or stalls and is resumed (as a
person would click "Resume") without selling a row twice; stock polling carries on after.
``python -m drills.drill_redis_outage [--seconds 90]``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drills.common import Context, bulk_state, cli, run_drill

OUTAGE_SECONDS = 30


def inject(ctx: Context) -> None:
    ctx.stack.send_task("vouchers.tasks.stock.stock_poll_dispatch_task")
    time.sleep(2)
    ctx.stack.redis_stop()
    ctx.note(f"redis stopped for {OUTAGE_SECONDS} s")
    time.sleep(OUTAGE_SECONDS)
    ctx.stack.redis_start()
    ctx.note("redis started again (empty)")
    ctx.stack.send_task("vouchers.tasks.stock.stock_poll_dispatch_task")


def resume_bulk(ctx: Context) -> None:
    """A marketing manager resumes a batch the outage stopped (the page offers the button)."""
    from django.contrib.auth import get_user_model

    from vouchers.models import BulkSale
    from vouchers.services.bulk_sales import bulk_sale_resume

    admin = get_user_model().objects.get(username="drill-admin")
    for pk in ctx.bulk_ids:
        progress = bulk_state(pk)
        if progress["resumable"] or progress["stalled"]:
            bulk_sale_resume(bulk_sale=BulkSale.objects.get(pk=pk), user=admin)
            ctx.note(f"bulk sale #{pk} resumed by hand ({progress['state']}: {progress['note'][:80]})")


def poll_count(ctx: Context) -> None:
    from vouchers.models import ProviderOperation

    polls = ProviderOperation.objects.filter(kind="poll").values_list("state", flat=True)
    ctx.note(f"stock polls in the ledger: {len(polls)} ({sum(s == 'succeeded' for s in polls)} succeeded)")


def after_load(ctx: Context) -> None:
    resume_bulk(ctx)
    ctx.stack.send_task("vouchers.tasks.stock.stock_poll_dispatch_task")
    time.sleep(3)
    poll_count(ctx)


def run(seconds: float = 90) -> int:
    return run_drill(
        "redis_outage", inject, seconds=seconds, inject_at=10, bulk_rows=150, after_load=after_load
    )


if __name__ == "__main__":
    sys.exit(cli("Redis outage", run, default_seconds=90))
