"""Drill: the stack's PostgreSQL is restarted (fast shutdown: connections cut) during load.

Expected: requests during the restart fail, the portal recovers by itself afterwards; a
redeem whose answer could not be recorded (the database was gone) stays ``pending``, is called
interrupted after the cut-off (connect + read timeout + 60 s) and settled by the reconcile
from the balance; nothing is lost or doubled. ``python -m drills.drill_postgres_restart``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drills.common import Context, cli, run_drill


def inject(ctx: Context) -> None:
    started = time.monotonic()
    ctx.stack.postgres_restart()
    ctx.note(f"postgres restarted (fast) in {time.monotonic() - started:.1f} s")


def run(seconds: float = 60) -> int:
    return run_drill(
        "postgres_restart",
        inject,
        seconds=seconds,
        inject_at=15,
        bulk_rows=60,
        allocate=6,
        settle_seconds=180,
        stale_pending=True,
    )


if __name__ == "__main__":
    sys.exit(cli("PostgreSQL restart", run))
