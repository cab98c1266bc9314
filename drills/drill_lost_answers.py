"""Drill: the sandbox applies redeems, purchases and allocations, then drops the connection.

While 50 cashiers redeem and a bulk sale sells through the worker, the next 15 redeems, 5
purchases and 2 allocations are applied by the sandbox and their answers lost. Expected: every
lost redeem is ``unknown`` and settled ``succeeded`` by the reconcile (the balance dropped);
lost purchases and allocations wait for a person (``needs review``, unknown-open); nothing is
sent twice, nothing lost. ``python -m drills.drill_lost_answers [--seconds 60]``
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drills.common import Context, cli, run_drill


def inject(ctx: Context) -> None:
    ctx.stack.fault("redeem", "lost_answer", count=15)
    ctx.stack.fault("purchase", "lost_answer", count=5)
    ctx.stack.fault("allocate", "lost_answer", provider="allsafe", count=2)
    ctx.note("faults on: next 15 redeems, 5 purchases, 2 allocations applied, answers dropped")


def run(seconds: float = 60) -> int:
    return run_drill("lost_answers", inject, seconds=seconds, inject_at=5, bulk_rows=80, allocate=6)


if __name__ == "__main__":
    sys.exit(cli("lost answers", run))
