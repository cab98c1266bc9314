"""Drill: the sandbox applies the call, then hangs past the portal's read timeout.

The drill campaigns have a 5 s read timeout; the next 10 redeems and 3 purchases are applied
and answered only after 8 s, when the portal has given up. Expected: the redeems are ``unknown``
and the reconcile settles them ``succeeded``; the purchases go to review; no call is resent.
``python -m drills.drill_hang [--seconds 60]``
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drills.common import Context, cli, run_drill


def inject(ctx: Context) -> None:
    ctx.stack.fault("redeem", "hang", count=10, seconds=8)
    ctx.stack.fault("purchase", "hang", count=3, seconds=8)
    ctx.note("faults on: next 10 redeems and 3 purchases applied, answered after 8 s (timeout 5 s)")


def run(seconds: float = 60) -> int:
    return run_drill("hang", inject, seconds=seconds, inject_at=5, bulk_rows=60)


if __name__ == "__main__":
    sys.exit(cli("hang", run))
