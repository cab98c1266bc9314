"""Benchmark of stock polling (issue 7): one poll cycle on ONE worker process vs. the serial sum.

Run (needs PostgreSQL and Redis; without them it says so and exits with status 77, "skipped"):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python bench/bench_stock.py

Why both: the parallel measurement needs a real Celery worker process reading a real broker
(the in-process eager mode would run the polls one after another and measure nothing), and that
process needs the benchmark's database, which SQLite cannot share with 50 writing threads without
turning lock waits into the thing measured.

What runs, all of it the real code:
- the sandbox providers in a thread of this process (127.0.0.1, free port) with 100 ms added to
  every provider call; one sandbox Allsafe campaign with its own credentials per portal campaign,
  all linked to the demo vaults (healthy, low and empty stock);
- a throwaway database ``<name>_benchrun`` with Allsafe campaigns in disjoint sets of 250, 500
  and 1,000 (plus a set for the serial measurement);
- ONE ``celery worker --pool threads --concurrency 50`` process on Redis (the concurrency is a
  flag; 50 because this PostgreSQL allows 100 connections and every worker thread holds one).

One cycle = ``stock_poll_dispatch_task`` sent to the worker (the beat's entry: it claims every due
campaign and enqueues one ``stock_poll_task`` each) until every campaign's poll is in the ledger;
each poll is the real ``stock_poll`` service calling the real Allsafe client. Every set is polled
once before its measured cycle, so the measured one is a steady-state cycle (alerts already open)
like the five-minutely cycles of a running portal; the serial set is warmed the same way.

The serial sum is N x the mean time of ``stock_poll`` called one after another in this process
on the serial set: an under-estimate of a serial cycle (it leaves out the dispatcher), so the
printed speed-up is on the conservative side. Target: speed-up ≥ 20x at 1,000 campaigns, and the
time per campaign flat as the count doubles.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from datetime import timedelta

import support
from django.core.cache import cache
from django.utils import timezone

from portal.processes import ManagedProcess, celery_worker_command
from sandbox.state import AllsafeCampaign
from vouchers.models import Campaign, ProviderOperation, StockMonitor
from vouchers.models.ledger import OperationKind, OperationState

SKIPPED = 77
LATENCY_MS = 100
TARGET_SPEEDUP = 20.0
FLAT_TOLERANCE = 1.5  # time per campaign at the largest set ≤ 1.5 x the smallest set's
VAULTS = ["Main vault", "Promo vault"]


def need_servers() -> str:
    if not support.is_postgres():
        return "DATABASE_URL must point at PostgreSQL (a worker process shares the database)"
    if not os.environ.get("REDIS_URL"):
        return "REDIS_URL must be set (the worker reads its tasks from a real broker)"
    return ""


class Worker:
    """One Celery worker process (its own process group), stopped for sure at the end."""

    def __init__(self, concurrency: int):
        self.concurrency = concurrency
        self.process: ManagedProcess | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": support.database_url(),
            "CELERY_BROKER_URL": os.environ["REDIS_URL"],
            "PORTAL_VAR_DIR": support.VAR_DIR,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        }
        command = celery_worker_command(
            pool="threads", concurrency=self.concurrency, name="bench", extra=["--without-heartbeat"]
        )
        log = os.path.join(support.VAR_DIR, "worker.log")
        self.process = ManagedProcess("Celery worker", command, cwd=support.ROOT, env=env, log=log).start()
        self.process.wait_for_log(b"ready.", timeout=60)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=20)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the worker process has used so far, all its threads together."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self) -> str:
        return self.process.tail() if self.process else ""


def make_campaigns(sandbox, prefix: str, count: int) -> list[int]:
    """``count`` live Allsafe campaigns, each with its own sandbox account linked to the demo vaults."""
    campaigns = []
    for n in range(count):
        username, password = f"{prefix}-{n:04d}", f"{prefix}-{n:04d}-password"
        with sandbox.store.lock:
            sandbox.store.allsafe_campaigns[username] = AllsafeCampaign(
                username, password, vaults=list(VAULTS)
            )
        campaign = Campaign(
            name=f"Bench {prefix} {n:04d}",
            slug=f"bench-{prefix}-{n:04d}",
            provider="allsafe",
            base_url=f"{sandbox.base_url}/allsafe",
            api_username=username,
            is_live=True,
        )
        campaign.api_password = password
        campaigns.append(campaign)
    created = Campaign.objects.bulk_create(campaigns, batch_size=500)
    ids = [c.pk for c in created]
    cache.delete_many([f"stock-poll-lock:{pk}" for pk in ids])  # a killed earlier run may have left one
    return ids


def polls_of(ids: list[int], since) -> int:
    return ProviderOperation.objects.filter(
        campaign_id__in=ids, kind=OperationKind.POLL, created_at__gte=since
    ).count()


def cycle(ids: list[int], all_ids: list[int], worker: Worker, timeout: float) -> tuple[float, float, int]:
    """One dispatcher run over exactly ``ids`` (the other sets switched off).

    Returns the wall time, the worker's CPU time during it, and how many polls did not succeed.
    """
    from vouchers.tasks.stock import stock_poll_dispatch_task

    Campaign.objects.filter(pk__in=all_ids).exclude(pk__in=ids).update(is_live=False)
    Campaign.objects.filter(pk__in=ids).update(is_live=True)
    # "The interval has passed": every campaign of the set is due again.
    StockMonitor.objects.filter(campaign_id__in=ids).update(
        next_poll_at=timezone.now() - timedelta(seconds=1)
    )
    since = timezone.now()
    cpu_before = worker.cpu_seconds()
    started = time.perf_counter()
    stock_poll_dispatch_task.delay()
    deadline = started + timeout
    done = 0
    while time.perf_counter() < deadline:
        done = polls_of(ids, since)
        if done >= len(ids):
            break
        time.sleep(0.02)
    wall = time.perf_counter() - started
    cpu = worker.cpu_seconds() - cpu_before
    if done < len(ids):
        raise RuntimeError(f"only {done} of {len(ids)} polls finished in {timeout:.0f} s")
    failed = (
        ProviderOperation.objects.filter(campaign_id__in=ids, kind=OperationKind.POLL, created_at__gte=since)
        .exclude(state=OperationState.SUCCEEDED)
        .count()
    )
    return wall, cpu, failed


def serial(ids: list[int]) -> list[float]:
    """``stock_poll`` for each campaign, one after another, in this process; seconds per poll."""
    from vouchers.services.stock import stock_poll

    Campaign.objects.filter(pk__in=ids).update(is_live=True)
    durations = []
    for pk in ids:
        t0 = time.perf_counter()
        result = stock_poll(campaign_id=pk)
        durations.append(time.perf_counter() - t0)
        if result.status != "succeeded":
            raise RuntimeError(f"serial poll of campaign {pk}: {result.status} {result.error_code}")
    return durations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250,500,1000", help="campaign counts, smallest first")
    parser.add_argument("--concurrency", type=int, default=50, help="threads of the one worker process")
    parser.add_argument("--serial", type=int, default=100, help="polls timed one after another")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    support.silence_logs()
    # A plain kill of the benchmark still stops the worker and drops the database (finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    missing = need_servers()
    if missing:
        print(f"Stock polling benchmark SKIPPED: {missing}.")
        print(
            "  e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench REDIS_URL=redis://127.0.0.1:6379/7"
        )
        return SKIPPED

    from portal.celery import app

    started = time.monotonic()
    worker = Worker(args.concurrency)
    with support.throwaway_database(), support.running_sandbox(LATENCY_MS) as sandbox:
        try:
            sets = {n: make_campaigns(sandbox, f"s{n}", n) for n in sizes}
            serial_ids = make_campaigns(sandbox, "serial", args.serial)
            all_ids = [pk for ids in sets.values() for pk in ids] + serial_ids
            app.control.purge()  # tasks a killed earlier run left in this Redis db
            worker.start()

            walls, cpus, failures = {}, {}, {}
            for n, ids in sets.items():
                cycle(ids, all_ids, worker, timeout=120)  # first poll of the set: monitors, first alerts
                walls[n], cpus[n], failures[n] = cycle(ids, all_ids, worker, timeout=120)
            serial(serial_ids)  # warm-up: first poll of the serial set
            durations = serial(serial_ids)
        finally:
            worker.stop()
        db_label = support.database_label()

    per_poll = statistics.mean(durations)
    largest = sizes[-1]
    serial_sum = per_poll * largest
    speedup = serial_sum / walls[largest]
    per_campaign = {n: walls[n] / n * 1000 for n in sizes}
    flat = per_campaign[largest] <= per_campaign[sizes[0]] * FLAT_TOLERANCE
    load = os.getloadavg()
    print("Stock polling benchmark (issue 7): one cycle on one worker process vs. polling in series")
    print(f"  database / broker                : {db_label} / Redis ({os.environ['REDIS_URL']})")
    print(f"  sandbox latency per provider call: {LATENCY_MS} ms (in-process sandbox, 127.0.0.1)")
    print(f"  worker                           : 1 process, --pool threads --concurrency {args.concurrency}")
    print(
        f"  machine                          : {os.cpu_count()} CPUs, load average {load[0]:.2f} at the end"
    )
    print(
        f"  serial stock_poll                : mean {per_poll * 1000:.1f} ms, median "
        f"{statistics.median(durations) * 1000:.1f} ms over {len(durations)} polls"
    )
    for n in sizes:
        print(
            f"  cycle of {n:>5} campaigns          : {walls[n]:.2f} s wall, "
            f"{per_campaign[n]:.2f} ms per campaign, {failures[n]} failed polls; "
            f"worker CPU {cpus[n] / n * 1000:.1f} ms per poll ({cpus[n] / walls[n] * 100:.0f}% of one core)"
        )
    print(f"  serial sum for {largest} campaigns     : {serial_sum:.1f} s ({largest} x mean serial poll)")
    print(f"  speed-up at {largest} campaigns        : {speedup:.1f}x  (target >= {TARGET_SPEEDUP:.0f}x)")
    print(
        f"  time per campaign {sizes[0]} -> {largest}       : x{per_campaign[largest] / per_campaign[sizes[0]]:.2f}  "
        f"(flat is the goal; passes at <= x{FLAT_TOLERANCE})"
    )
    cpu_bound = per_poll / (cpus[largest] / largest)
    print(
        f"  ceiling for one process          : {cpu_bound:.1f}x (serial poll time / worker CPU per poll: "
        "a process cannot run Python on more than one core)"
    )
    print(f"  elapsed                          : {time.monotonic() - started:.1f} s")
    ok = speedup >= TARGET_SPEEDUP and flat and not any(failures.values())
    print("  result                           :", "targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
