"""Drill: the Celery worker is SIGKILLed in the middle of a bulk batch, then started again.

Expected: the row being sold when the worker died goes to review (never resent; the sandbox
applied it after the worker was gone, so it is unknown-open, not lost); after the
batch's lease runs out the stalled-batch sweep (sent by the drill as beat would) puts it back
on the queue and the new run sells the remaining rows, none twice.
``python -m drills.drill_worker_kill [--seconds 60]``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drills.common import Context, bulk_state, cli, run_drill


def inject(ctx: Context) -> None:
    # Make sure the kill lands while a purchase is on the wire (not between two rows): the next
    # purchase waits 3 s at the sandbox before it is applied, and the worker dies during that wait.
    ctx.stack.fault("purchase", "latency", count=1, ms=3000)
    time.sleep(1.5)
    before = bulk_state(ctx.bulk_ids[0])
    pid = ctx.stack.worker_kill()
    ctx.note(f"worker {pid} SIGKILLed with the batch at {before['done']}/{before['valid']} rows")
    time.sleep(3)
    ctx.stack.worker_start()
    ctx.note("worker started again")


def run(seconds: float = 60) -> int:
    return run_drill("worker_kill", inject, seconds=seconds, inject_at=8, bulk_rows=150, settle_seconds=150)


if __name__ == "__main__":
    sys.exit(cli("worker kill", run))
