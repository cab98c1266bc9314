"""Benchmark of the till flow (issue 18): wall time from Enter to the slip, in Chromium.

Run: ``.venv/bin/python bench/bench_till.py`` (SQLite in a temporary directory), or with
``DATABASE_URL=postgres://...`` (a throwaway ``<name>_benchrun`` database) and ``REDIS_URL``.
Needs Chromium at /usr/bin/chromium (Playwright drives it; nothing is downloaded).

A real browser at a real (threaded) Django server, against the sandbox with 50 ms added latency
per provider call. Each customer is what a keyboard-only cashier does for a full-value token:
the scanner types the code and Enter; on the token card Enter redeems; the slip is shown. The
benchmark prints, per customer, the median and worst wall time:
- Enter → token card (the check: portal + LINA checkcode, with the page load),
- Enter on Redeem → slip (the redeem POST, its redirect and the slip page),
- the whole of it, first Enter → slip (the figure the issue asks for; about 1 s was the target).
It is informative only (no pass/fail): it is not a timed test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from decimal import Decimal

import support
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test.testcases import LiveServerThread, _StaticFilesHandler

from vouchers.access import roles
from vouchers.models import Campaign, Membership

LATENCY_MS = 50
PASSWORD = "bench-till-password"  # noqa: S105 (a throwaway database's user)
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def token_code(n: int) -> str:
    """16 characters from the sandbox's alphabet, distinct per customer."""
    digits = ""
    for _ in range(4):
        digits += ALPHABET[n % len(ALPHABET)]
        n //= len(ALPHABET)
    return "TAKEBNCHMARK" + digits


def setup(sandbox_url: str):
    campaign = Campaign(
        name="Bench till",
        slug="bench-till",
        provider="lina",
        base_url=f"{sandbox_url}/lina/extern/tokenapi",
        api_username="demo-shop",
        is_live=True,
    )
    campaign.set_password("demo-lina-password")
    campaign.set_shared_key("demo-lina-shared-key")
    campaign.save()
    user = get_user_model().objects.create_user("bench-till", password=PASSWORD)
    user.groups.add(Group.objects.get(name=roles.CASHIER))
    Membership.objects.create(user=user, campaign=campaign)
    return campaign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20, help="timed customers (default 20)")
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    support.silence_logs()
    support.serve_like_production()
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop runs in this thread
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    samples: dict[str, list[float]] = {"card": [], "slip": [], "total": []}
    with support.throwaway_database(), support.running_sandbox(LATENCY_MS) as sandbox:
        from sandbox.lina import new_token

        total = args.warmup + args.customers
        codes = [token_code(n) for n in range(total)]
        for code in codes:
            new_token(
                sandbox.store, account="demo-shop", code=code, value=Decimal("10.00"), full_value_only=True
            )
        setup(sandbox.base_url)
        server = LiveServerThread("127.0.0.1", _StaticFilesHandler, port=0)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise server.error
        url = f"http://127.0.0.1:{server.port}"
        support.settings.ALLOWED_HOSTS = [*support.settings.ALLOWED_HOSTS, "127.0.0.1"]
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_page()
                page.set_default_timeout(30_000)
                page.goto(url + "/login/")
                page.fill("input[name=username]", "bench-till")
                page.fill("input[name=password]", PASSWORD)
                page.press("input[name=password]", "Enter")
                page.wait_for_selector("#id_code:focus")
                for n, code in enumerate(codes):
                    page.keyboard.type(code)  # the scanner ...
                    t0 = time.perf_counter()
                    page.keyboard.press("Enter")  # ... ends with Enter
                    page.wait_for_selector("#redeem-button:focus")
                    t1 = time.perf_counter()
                    page.keyboard.press("Enter")  # Redeem
                    page.wait_for_selector("#new-balance")
                    page.wait_for_selector("#id_code:focus")  # ready for the next customer
                    t2 = time.perf_counter()
                    if n >= args.warmup:
                        samples["card"].append(t1 - t0)
                        samples["slip"].append(t2 - t1)
                        samples["total"].append(t2 - t0)
                browser.close()
        finally:
            server.terminate()
        db_label = support.database_label()

    def line(label: str, key: str) -> str:
        values = samples[key]
        return f"  {label:<33}: median {statistics.median(values) * 1000:7.1f} ms, worst {max(values) * 1000:7.1f} ms"

    print("Till benchmark (issue 18): keyboard-only cashier in Chromium, Enter -> slip")
    print(f"  database                         : {db_label}")
    print(f"  sandbox latency per provider call: {LATENCY_MS} ms (in-process sandbox, 127.0.0.1)")
    print(
        f"  machine                          : {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"  customers                        : {args.customers} (after {args.warmup} warm-up)")
    print(line("Enter -> token card (check)", "card"))
    print(line("Enter on Redeem -> slip", "slip"))
    print(line("first Enter -> slip (per customer)", "total"))
    print(f"  elapsed                          : {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
