"""Benchmark of stock polling (issue 17 item 3): poll cycles on the worker as compose runs it.

Run (needs PostgreSQL and Redis; without them it says so and exits with status 77, "skipped"):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python bench/bench_stock.py            # full run: about 10 minutes on 2 cores
        .venv/bin/python bench/bench_stock.py --quick    # development: 1 round, 200 / 2,000 campaigns

What runs, all of it the real code and the deployed shape:
- the sandbox providers as their OWN process (``python -m sandbox --latency-ms 100``, a
  thread per request), so its serving never competes with this process's GIL; every portal
  campaign shares the sandbox's demo Allsafe account (healthy, low and empty vaults), so the
  stock and the steady-state alerts are the same for all;
- a throwaway PostgreSQL database ``<name>_benchrun``; 10,000 live Allsafe campaigns made with
  one ``bulk_create`` (plus a set for the serial measurement);
- the worker as docker-compose.yml runs it: ``celery worker --concurrency 8`` with the default
  prefork pool (8 child processes), Redis broker, Redis cache (the poll locks), LOG_LEVEL INFO;
  one worker process ("one container") for the speed-up and the flatness, two of them ("two
  containers", ``--scale worker=2``) for the 10,000-in-one-interval target.

One cycle = ``stock_poll_dispatch_task`` sent to a worker (the beat's entry: it claims the due
campaigns STOCK_POLL_CHUNK_SIZE at a time and queues one chunk task each) until every campaign
of the cycle has its poll in the ledger. Every campaign is polled once before the measured
rounds, so those are steady-state cycles (alerts already open), like a running portal's.

The serial figure is ``stock_poll`` (one campaign, the same code) called one after another in
this process on the serial set; serial sum = N x its mean. Targets (issue 17): speed-up >= 20x
at 1,000 campaigns on one worker process; time per campaign flat (within +-15 %) from 1,000 to
10,000 on that process; 10,000 campaigns polled within one 60 s interval with two worker
processes. Each figure: min / median / max of the rounds; the targets are judged on the median.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import support
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from portal.processes import ManagedProcess, celery_worker_command, free_port
from vouchers.models import Campaign, ProviderOperation, StockMonitor
from vouchers.models.ledger import OperationKind, OperationState

SKIPPED = 77
LATENCY_MS = 100
TARGET_SPEEDUP = 20.0
FLAT_TOLERANCE = 0.15  # time per campaign at 10,000 within +-15 % of the time at 1,000
TARGET_INTERVAL_SECONDS = 60.0
COMPOSE_CONCURRENCY = 8  # docker-compose.yml: worker --concurrency 8 (prefork)
# The sandbox's demo Allsafe account (sandbox/seed.py): every bench campaign polls it.
SANDBOX_USER, SANDBOX_PASSWORD = "demo-allsafe", "demo-allsafe-password"


def need_servers() -> str:
    if not support.is_postgres():
        return "DATABASE_URL must point at PostgreSQL (the worker processes share the database)"
    if not os.environ.get("REDIS_URL"):
        return "REDIS_URL must be set (the workers read their tasks from a real broker)"
    return ""


class Sandbox:
    """The sandbox providers in their own process, 100 ms added to every provider call."""

    def __init__(self, latency_ms: int):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        log = os.path.join(support.VAR_DIR, "sandbox.log")
        command = [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            str(self.port),
            "--latency-ms",
            str(latency_ms),
            "--quiet",
        ]
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_ENV"}
        self.process = ManagedProcess("sandbox", command, cwd=support.ROOT, env=env, log=log)

    def __enter__(self) -> Sandbox:
        self.process.start().wait_for_port(self.port, timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        self.process.stop(timeout=10)


class Worker:
    """One Celery worker as compose runs it: prefork, --concurrency 8 (its own process group)."""

    def __init__(self, name: str):
        self.name = name
        self.process: ManagedProcess | None = None
        self.log = os.path.join(support.VAR_DIR, f"{name}.log")

    def start(self) -> Worker:
        env = {
            **os.environ,
            "DATABASE_URL": support.database_url(),
            "CELERY_BROKER_URL": os.environ["REDIS_URL"],
            "PORTAL_VAR_DIR": support.VAR_DIR,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "LOG_LEVEL": "INFO",  # .env.example's value: the log lines are part of the cost
        }
        command = celery_worker_command(pool="prefork", concurrency=COMPOSE_CONCURRENCY, name=self.name)
        self.process = ManagedProcess(f"Celery {self.name}", command, cwd=support.ROOT, env=env, log=self.log)
        self.process.start()
        return self

    def ready(self) -> None:
        self.process.wait_for_log(b"ready.", timeout=90)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=30)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the worker: its main process and its prefork children."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return sum(_cpu_of(int(p)) for p in [pid, *children])

    def pool_full_warnings(self) -> int:
        return Path(self.log).read_bytes().count(b"Connection pool is full")


def _cpu_of(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_campaigns(base_url: str, prefix: str, count: int) -> list[int]:
    """``count`` live Allsafe campaigns in one bulk insert, all on the sandbox's demo account."""
    campaigns = []
    for n in range(count):
        campaign = Campaign(
            name=f"Bench {prefix} {n:05d}",
            slug=f"bench-{prefix}-{n:05d}",
            provider="allsafe",
            base_url=f"{base_url}/allsafe",
            api_username=SANDBOX_USER,
            is_live=False,
        )
        campaign.api_password = SANDBOX_PASSWORD
        campaigns.append(campaign)
    created = Campaign.objects.bulk_create(campaigns, batch_size=1000)
    ids = [c.pk for c in created]
    cache.delete_many([f"stock-poll-lock:{pk}" for pk in ids])  # a killed earlier run may have left one
    return ids


def seed_alerts(template_id: int, ids: list[int]) -> int:
    """Give every campaign of ``ids`` the open alerts a real poll of the shared account opened.

    All campaigns see the same stock (one sandbox account), so after their first poll each would
    have the same alerts; inserting them in bulk saves minutes of alert work (with audit rows and
    e-mails) that the measured, steady-state cycles never do. Marked as e-mailed to one admin, as
    a running portal's alerts are, so no cycle owes an e-mail.
    """
    from vouchers.models import StockAlert
    from vouchers.services.stock import stock_poll

    Campaign.objects.filter(pk=template_id).update(is_live=True)
    result = stock_poll(campaign_id=template_id)
    Campaign.objects.filter(pk=template_id).update(is_live=False)
    if result.status != "succeeded":
        raise RuntimeError(f"the template poll failed: {result.error_code}")
    now = timezone.now()
    StockAlert.objects.filter(campaign_id=template_id).update(emailed_at=now, email_recipients=1)
    template = list(StockAlert.objects.filter(campaign_id=template_id, state="open"))
    fields = [f.attname for f in StockAlert._meta.concrete_fields if f.attname not in ("id", "campaign_id")]
    rows = [{name: getattr(alert, name) for name in fields} for alert in template]
    copies = [StockAlert(campaign_id=pk, **row) for pk in ids for row in rows]
    StockAlert.objects.bulk_create(copies, batch_size=2000)
    return len(template)


def cycle(ids: list[int], live: list[int], workers: list[Worker], timeout: float) -> tuple[float, float, int]:
    """One dispatcher run over exactly ``ids`` (every other bench campaign switched off).

    Returns the wall time (dispatch sent → last poll in the ledger), the workers' CPU time
    during it, and how many polls did not succeed.
    """
    from vouchers.tasks.stock import stock_poll_dispatch_task

    if live != ids:
        Campaign.objects.filter(pk__in=live).update(is_live=False)
        Campaign.objects.filter(pk__in=ids).update(is_live=True)
        live[:] = ids
    # "The interval has passed": every campaign of the set is due again.
    StockMonitor.objects.filter(campaign_id__in=ids).update(
        next_poll_at=timezone.now() - timedelta(seconds=1)
    )
    connection.close()  # nothing of this process's stays open into the measured part
    since = timezone.now()
    polls = ProviderOperation.objects.filter(kind=OperationKind.POLL, created_at__gte=since)
    cpu_before = sum(w.cpu_seconds() for w in workers)
    started = time.perf_counter()
    stock_poll_dispatch_task.delay()
    deadline = started + timeout
    done = 0
    while time.perf_counter() < deadline:
        done = polls.count()
        if done >= len(ids):
            break
        time.sleep(0.05)
    wall = time.perf_counter() - started
    cpu = sum(w.cpu_seconds() for w in workers) - cpu_before
    if done < len(ids):
        raise RuntimeError(f"only {done} of {len(ids)} polls finished in {timeout:.0f} s")
    time.sleep(0.5)  # the chunk tasks' alert work (if any) finishes before the next cycle
    failed = polls.exclude(state=OperationState.SUCCEEDED).count()
    return wall, cpu, failed


def drain(timeout: float = 600) -> None:
    """Wait until the broker queue is empty and no alert or audit row was added for 2 s: the
    first cycle's alert tasks (opening every campaign's alerts) must not run into a measured one."""
    import redis

    from vouchers.models import AuditEvent

    queue = redis.Redis.from_url(os.environ["REDIS_URL"])
    deadline = time.monotonic() + timeout
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = AuditEvent.objects.count()
        if count != last or queue.llen("celery"):
            last, quiet_since = count, time.monotonic()
        elif time.monotonic() - quiet_since >= 2:
            return
        time.sleep(0.2)
    raise RuntimeError("the worker did not go quiet after the first cycle")


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
    Campaign.objects.filter(pk__in=ids).update(is_live=False)
    return durations


def spread(samples: list[float], scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    """min / median / max of the rounds."""
    lo, mid, hi = min(samples) * scale, statistics.median(samples) * scale, max(samples) * scale
    return f"{fmt.format(lo)} / {fmt.format(mid)} / {fmt.format(hi)}"


def start_workers(names: list[str]) -> list[Worker]:
    workers = [Worker(name).start() for name in names]
    for worker in workers:  # started together, waited for together
        worker.ready()
    return workers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="development: 1 round, 200 and 2,000 campaigns")
    parser.add_argument("--rounds", type=int, default=3, help="measured cycles per figure")
    parser.add_argument("--small", type=int, default=1000, help="campaigns for the speed-up")
    parser.add_argument("--large", type=int, default=10000, help="campaigns for flatness and the interval")
    parser.add_argument("--serial", type=int, default=100, help="polls timed one after another")
    parser.add_argument("--logs", default="", help="copy the worker and sandbox logs to this directory")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.small, args.large, args.serial = 1, 200, 2000, 30
    support.silence_logs()
    # A plain kill of the benchmark still stops the workers and drops the database (finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    missing = need_servers()
    if missing:
        print(f"Stock polling benchmark SKIPPED: {missing}.")
        print(
            "  e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench REDIS_URL=redis://127.0.0.1:6379/7"
        )
        return SKIPPED

    from django.conf import settings

    from portal.celery import app

    started = time.monotonic()
    workers: list[Worker] = []
    small_walls, large_walls, two_walls = [], [], []
    small_cpu, large_cpu, failures, pool_full = [], [], 0, 0
    with support.throwaway_database(), Sandbox(LATENCY_MS) as sandbox:
        try:
            t0 = time.perf_counter()
            all_ids = make_campaigns(sandbox.base_url, "c", args.large)
            serial_ids = make_campaigns(sandbox.base_url, "serial", args.serial)
            [template] = make_campaigns(sandbox.base_url, "template", 1)
            alerts_each = seed_alerts(template, all_ids)
            setup = time.perf_counter() - t0
            small_ids = all_ids[: args.small]
            live: list[int] = []
            app.control.purge()  # tasks a killed earlier run left in this Redis db
            timeout = 300

            workers = start_workers(["bench-a"])
            t0 = time.perf_counter()
            cycle(all_ids, live, workers, timeout)  # first poll of every campaign: monitors, alerts
            drain()
            first = time.perf_counter() - t0
            for _round in range(args.rounds):  # interleaved, so a noisy minute hits both sizes
                wall, cpu, failed = cycle(small_ids, live, workers, timeout)
                small_walls.append(wall), small_cpu.append(cpu / len(small_ids))
                failures += failed
                wall, cpu, failed = cycle(all_ids, live, workers, timeout)
                large_walls.append(wall), large_cpu.append(cpu / len(all_ids))
                failures += failed
            pool_full += workers[0].pool_full_warnings()
            for worker in workers:
                worker.stop()

            workers = start_workers(["bench-a", "bench-b"])
            for _round in range(args.rounds):
                wall, _cpu, failed = cycle(all_ids, live, workers, timeout)
                two_walls.append(wall)
                failures += failed
            pool_full += sum(w.pool_full_warnings() for w in workers)
            for worker in workers:
                worker.stop()
            workers = []

            serial(serial_ids)  # warm-up: first poll of the serial set
            durations = serial(serial_ids)
        finally:
            for worker in workers:
                worker.stop()
            if args.logs:  # the temporary directory goes with the database
                os.makedirs(args.logs, exist_ok=True)
                for name in ("bench-a.log", "bench-b.log", "sandbox.log"):
                    if os.path.exists(os.path.join(support.VAR_DIR, name)):
                        shutil.copy(os.path.join(support.VAR_DIR, name), args.logs)
        db_label = support.database_label()

    per_poll = statistics.mean(durations)
    serial_sum = per_poll * args.small
    speedups = [serial_sum / w for w in small_walls]
    speedup = statistics.median(speedups)
    per_small = [w / args.small for w in small_walls]
    per_large = [w / args.large for w in large_walls]
    flat_ratio = statistics.median(per_large) / statistics.median(per_small)
    flat = abs(flat_ratio - 1) <= FLAT_TOLERANCE
    interval = statistics.median(two_walls)
    load = os.getloadavg()
    chunk, threads = settings.STOCK_POLL_CHUNK_SIZE, settings.STOCK_POLL_CONCURRENCY
    print("Stock polling benchmark (issue 17 item 3): the worker as compose runs it")
    print(f"  database / broker + cache        : {db_label} / Redis ({os.environ['REDIS_URL']})")
    print(f"  sandbox                          : own process, {LATENCY_MS} ms per provider call, 127.0.0.1")
    print(
        f"  worker                           : celery prefork --concurrency {COMPOSE_CONCURRENCY}; "
        f"chunks of {chunk}, {threads} calls at once per chunk"
    )
    print(
        f"  machine                          : {os.cpu_count()} CPUs, load average {load[0]:.2f} at the end"
    )
    print(f"  rounds                           : {args.rounds} (figures: min / median / max)")
    print(
        f"  setup                            : {args.large + args.serial + 1} campaigns and "
        f"{alerts_each * args.large} open alerts ({alerts_each} each, as a real poll opened them) "
        f"in {setup:.1f} s (bulk_create)"
    )
    print(f"  first cycle (monitors created)   : {first:.1f} s, until the workers are quiet (not measured)")
    print(
        f"  serial stock_poll                : mean {per_poll * 1000:.1f} ms, median "
        f"{statistics.median(durations) * 1000:.1f} ms over {len(durations)} polls"
    )
    print(
        f"  1 worker, {args.small:>6} campaigns       : {spread(small_walls)} s wall; "
        f"{spread(per_small, 1000)} ms per campaign; CPU {spread(small_cpu, 1000, '{:.1f}')} ms per poll"
    )
    print(
        f"  1 worker, {args.large:>6} campaigns       : {spread(large_walls)} s wall; "
        f"{spread(per_large, 1000)} ms per campaign; CPU {spread(large_cpu, 1000, '{:.1f}')} ms per poll"
    )
    print(f"  2 workers, {args.large:>5} campaigns       : {spread(two_walls)} s wall")
    print(
        f"  serial sum for {args.small} campaigns     : {serial_sum:.1f} s ({args.small} x mean serial poll)"
    )
    print(
        f"  speed-up at {args.small} (1 worker)    : {spread(speedups, fmt='{:.1f}')}x  "
        f"(target >= {TARGET_SPEEDUP:.0f}x)"
    )
    print(
        f"  time per campaign {args.small} -> {args.large}: x{flat_ratio:.2f}  "
        f"(target: flat within +-{FLAT_TOLERANCE:.0%}, x{1 - FLAT_TOLERANCE:.2f} .. x{1 + FLAT_TOLERANCE:.2f})"
    )
    print(
        f"  {args.large} campaigns, 2 workers     : {interval:.1f} s  "
        f"(target <= {TARGET_INTERVAL_SECONDS:.0f} s, one poll interval)"
    )
    print(f"  failed polls / pool-full warnings: {failures} / {pool_full}  (target 0 / 0)")
    print(f"  elapsed                          : {time.monotonic() - started:.1f} s")
    misses = []
    if speedup < TARGET_SPEEDUP:
        misses.append(f"speed-up {speedup:.1f}x < {TARGET_SPEEDUP:.0f}x")
    if not flat:
        misses.append(f"time per campaign x{flat_ratio:.2f} outside +-{FLAT_TOLERANCE:.0%}")
    if interval > TARGET_INTERVAL_SECONDS:
        misses.append(f"{args.large} campaigns took {interval:.1f} s > {TARGET_INTERVAL_SECONDS:.0f} s")
    if failures or pool_full:
        misses.append(f"{failures} failed polls, {pool_full} pool-full warnings")
    if args.quick:
        print("  result                           : quick run (development only; targets need the full run)")
        print("    " + ("; ".join(misses) if misses else "no miss at these sizes"))
        return 1 if misses else 0
    print(
        "  result                           :",
        "targets met" if not misses else "TARGET MISSED: " + "; ".join(misses),
    )
    return 0 if not misses else 1


if __name__ == "__main__":
    sys.exit(main())
