"""Run the load test and every failure drill, one after the other, and print one table.

Each runs in its own process (each builds its own stack, and Django's settings are read once
per process), with a hard time limit. Exit status: non-zero if any drill lost or duplicated
something, or did not finish. ``python -m drills.run_all [--seconds 60]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

DRILLS = [
    ("load", "drills.load_test"),
    ("lost_answers", "drills.drill_lost_answers"),
    ("hang", "drills.drill_hang"),
    ("redis_outage", "drills.drill_redis_outage"),
    ("worker_kill", "drills.drill_worker_kill"),
    ("postgres_restart", "drills.drill_postgres_restart"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="load duration of each drill")
    parser.add_argument("--only", nargs="*", help="names of drills to run (default: all)")
    args = parser.parse_args(argv)
    statuses: dict[str, str] = {}
    for name, module in DRILLS:
        if args.only and name not in args.only:
            continue
        seconds = args.seconds + (30 if name == "redis_outage" else 0)  # the outage itself is 30 s
        started = time.monotonic()
        try:
            result = subprocess.run(
                [sys.executable, "-m", module, "--seconds", str(seconds)],
                cwd=ROOT,
                timeout=seconds + 600,  # stack start, settling (up to 3 min), stop
                check=False,
            )
            statuses[name] = "passed" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
        except subprocess.TimeoutExpired:
            statuses[name] = "FAILED (time limit)"
        print(f"=== {name}: {statuses[name]} in {time.monotonic() - started:.0f} s ===\n", flush=True)

    print(
        "drill              status   ops   ops/s  p50  p95  errors  applied  succ  unk→res  unk-open  lost  dup"
    )
    for name, status in statuses.items():
        path = RESULTS / f"{name}.json"
        if not path.exists():
            print(f"{name:<18} {status}")
            continue
        data = json.loads(path.read_text())
        load, inv = data["load"], data["invariants"]
        print(
            f"{name:<18} {'ok' if data['ok'] else 'FAIL':<6} {load['operations']:>5} {load['throughput']:>7} "
            f"{load['p50_ms']:>4} {load['p95_ms']:>4} {load['errors']:>7} {inv['applied']:>8} "
            f"{inv['succeeded']:>5} {inv['unknown_resolved']:>8} {inv['unknown_open']:>9} "
            f"{inv['lost']:>5} {inv['duplicated']:>4}"
        )
    return 0 if all(s == "passed" for s in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
