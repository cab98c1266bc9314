"""Benchmark of the cashier desk through the real stack (issue 17 item 1): gunicorn, PostgreSQL, Redis.

Run (about 1.5 minutes: migrate, collectstatic, gunicorn start, 3 rounds of 30; ``--quick``
runs 3 rounds of 8 in about 50 s, for development only)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal REDIS_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python bench/bench_desk.py

What it starts, as docker-compose.yml deploys the web service:

- a throwaway PostgreSQL database ``<name>_benchrun`` (bench/support.py), migrated, dropped after;
- ``gunicorn --config deploy/gunicorn.conf.py portal.wsgi`` (3 workers x 4 threads, JSON access
  log) bound to a free loopback port, with ``DJANGO_ENV=production``: production settings, so
  DEBUG off, sessions in Redis (``REDIS_URL``), WhiteNoise's manifest storage (collectstatic
  into a temporary directory first), secure cookies, HSTS. The bench plays the TLS proxy in front
  of it: every request carries ``X-Forwarded-Proto: https`` and the browser's ``Origin``;
- the sandbox (in this process, a thread) with 50 ms added latency on every provider call.

A cashier logs in over real HTTP (GET /login/, the CSRF token from the page, POST), then, per
iteration: **check** (POST the code, as the till's browser does with JavaScript: ``fetch`` asking
for the token card fragment; the full page is timed too and printed), **redeem** (POST the form
from the card, CSRF and one-time token from it; answered by a redirect) and **result** (GET of the
redirect's page). Interleaved in the same iteration, in alternating order, the same calls made
directly with the real LINA client against the same sandbox. Ratios portal / direct of the
medians, per round; printed as min / median / max over 3 rounds; the target is met when the
median of the rounds is within it.

Where a request's time goes comes from the ``Server-Timing`` header that
portal/server_timing.py adds when ``PORTAL_SERVER_TIMING=1`` (set for gunicorn here): SQL ms and
statements, template ms, provider ms, the rest of Django, and what is outside Django (gunicorn,
HTTP on loopback, this client). Queries per redeem are counted the same way, before and after
10,000 more ledger rows of the same code and cashier are written: they must not change.

Without PostgreSQL and Redis it says so and exits 77 (nothing measured).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

TARGETS = {"check": 1.20, "redeem": 1.25, "redeem+result": 1.40}
STRETCH = 1.10
LATENCY_MS = 50
PORTAL_CODE = "BENCHDESKPORTAL1"
DIRECT_CODE = "BENCHDESKDIRECT1"
AMOUNT = Decimal("1.00")
PASSWORD = "bench-cashier-" + secrets.token_urlsafe(12)
SKIPPED = 77


def services_reason() -> str | None:
    """Why the bench cannot run here (None: PostgreSQL and Redis are configured and answer)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return "DATABASE_URL is not a PostgreSQL URL"
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        return "REDIS_URL is not set"
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"Redis at REDIS_URL does not answer ({type(exc).__name__})"
    return None


_reason = services_reason()
if _reason is not None:
    print(f"Cashier desk benchmark: not run: {_reason}. It needs PostgreSQL and Redis (exit {SKIPPED}).")
    sys.exit(SKIPPED)

# The bench process and gunicorn share the LINA session hash in Redis: its fingerprint is keyed
# with SECRET_KEY, and the campaign's credentials are encrypted with FIELD_ENCRYPTION_KEYS, so both
# processes get the same (freshly generated) values.
from cryptography.fernet import Fernet  # noqa: E402

os.environ["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(64)
os.environ["FIELD_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()

import requests  # noqa: E402
import support  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402

from portal import server_timing  # noqa: E402
from portal.processes import LOOPBACK, ManagedProcess, free_port  # noqa: E402
from vouchers.access import roles  # noqa: E402
from vouchers.models import Campaign, Membership, ProviderOperation  # noqa: E402
from vouchers.models.ledger import OperationKind, OperationState  # noqa: E402
from vouchers.services.providers import provider_client  # noqa: E402
from vouchers.values.codes import code_digest, mask_code  # noqa: E402

ROOT = support.ROOT
FRAGMENT_HEADER = "X-Desk-Fragment"  # what static/js/desk.js sends with its fetch


class BenchError(RuntimeError):
    pass


def field(body: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', body)
    if match is None:
        raise BenchError(f"the page has no field {name!r}")
    return match.group(1)


class Browser:
    """A cashier's browser behind the TLS proxy: cookies (Secure ones too), CSRF from each page."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = requests.Session()
        host = base_url.split("://", 1)[1]
        self.http.headers.update({"X-Forwarded-Proto": "https", "Origin": f"https://{host}"})
        # Production cookies are Secure: the proxy speaks TLS, this hop plain HTTP on loopback, and
        # requests would not send them back over http://. So the cookies are kept here.
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def _note(self, response: requests.Response) -> None:
        for cookie in response.cookies:
            if cookie.value and not cookie.is_expired():
                self.cookies[cookie.name] = cookie.value
            else:
                self.cookies.pop(cookie.name, None)
        self.http.cookies.clear()
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)
        if match:
            self.csrf = match.group(1)

    def _headers(self, extra: dict | None = None) -> dict[str, str]:
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        return {**({"Cookie": cookie} if cookie else {}), **(extra or {})}

    def get(self, path: str, **kwargs) -> requests.Response:
        response = self.http.get(
            self.base_url + path, headers=self._headers(), allow_redirects=False, **kwargs
        )
        self._note(response)
        return response

    def post(self, path: str, data: dict, **kwargs) -> requests.Response:
        referer = f"https://{self.base_url.split('://', 1)[1]}{path}"
        headers = self._headers({"Referer": referer, **kwargs.pop("headers", {})})
        response = self.http.post(
            self.base_url + path,
            data={"csrfmiddlewaretoken": self.csrf, **data},
            headers=headers,
            allow_redirects=False,
            **kwargs,
        )
        self._note(response)
        return response

    def login(self, username: str, password: str) -> None:
        page = self.get("/login/")
        if page.status_code != 200 or not self.csrf:
            raise BenchError(f"login page: HTTP {page.status_code}")
        answer = self.post("/login/", {"username": username, "password": password})
        if answer.status_code != 302:
            raise BenchError(f"login refused: HTTP {answer.status_code}")


def timing_of(response: requests.Response) -> dict[str, float]:
    value = response.headers.get(server_timing.HEADER)
    if not value:
        raise BenchError("no Server-Timing header: is PORTAL_SERVER_TIMING=1 reaching gunicorn?")
    return server_timing.parse(value)


class Desk:
    def __init__(self, browser: Browser, slug: str):
        self.browser = browser
        self.check_path = f"/desk/{slug}/"
        self.redeem_path = f"/desk/{slug}/redeem/"

    def open(self) -> None:
        page = self.browser.get(self.check_path)
        if page.status_code != 200:
            raise BenchError(f"desk page: HTTP {page.status_code}")

    def check(self, code: str, *, fragment: bool) -> requests.Response:
        headers = {FRAGMENT_HEADER: "1"} if fragment else {}
        answer = self.browser.post(self.check_path, {"code": code}, headers=headers)
        if answer.status_code != 200 or 'id="token-card"' not in answer.text:
            raise BenchError(f"portal check failed: HTTP {answer.status_code}")
        if fragment and "<html" in answer.text:
            raise BenchError("the check was answered with the whole page, not the card fragment")
        return answer

    def redeem(self, card: str) -> requests.Response:
        form = {
            "amount": f"{AMOUNT:.2f}",
            "code": field(card, "code"),
            "check": field(card, "check"),
            "request_token": field(card, "request_token"),
        }
        answer = self.browser.post(self.redeem_path, form)
        if answer.status_code != 302:
            raise BenchError(f"portal redeem was not accepted: HTTP {answer.status_code}")
        return answer

    def result(self, location: str) -> requests.Response:
        answer = self.browser.get(location)
        if answer.status_code != 200 or 'id="new-balance"' not in answer.text:
            raise BenchError(f"redeem did not succeed: HTTP {answer.status_code}")
        return answer


def setup(sandbox_url: str):
    campaign = Campaign(
        name="Bench shop",
        slug="bench-shop",
        provider="lina",
        base_url=f"{sandbox_url}/lina/extern/tokenapi",
        api_username="demo-shop",
        is_live=True,
    )
    campaign.api_password = "demo-lina-password"  # noqa: S105 (the sandbox demo account)
    campaign.api_shared_key = "demo-lina-shared-key"
    campaign.save()
    user = get_user_model().objects.create_user("bench-cashier", password=PASSWORD)
    user.groups.add(Group.objects.get(name=roles.CASHIER))
    Membership.objects.create(user=user, campaign=campaign)
    return campaign, user


def grow_ledger(campaign: Campaign, user, rows: int) -> None:
    """Older ledger rows of this campaign, this cashier and this very code (the worst case)."""
    digest, masked = code_digest(PORTAL_CODE), mask_code(PORTAL_CODE)
    batch = []
    for n in range(rows):
        kind = OperationKind.REDEEM if n % 2 else OperationKind.CHECK
        batch.append(
            ProviderOperation(
                campaign=campaign,
                user=user,
                kind=kind,
                state=OperationState.SUCCEEDED,
                code_masked=masked,
                code_digest=digest,
                amount=AMOUNT if kind == OperationKind.REDEEM else None,
            )
        )
    ProviderOperation.objects.bulk_create(batch, batch_size=2000)


def production_env(*, database_url: str, static_root: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_ENV="production",
        DJANGO_DEBUG="false",
        DJANGO_ALLOWED_HOSTS=LOOPBACK,
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=os.environ["REDIS_URL"],
        DJANGO_STATIC_ROOT=static_root,
        # The sandbox listens on loopback over plain HTTP, which production allows for loopback only.
        LINA_ALLOWED_HOSTS=f"http://{LOOPBACK}:*",
        PORTAL_SERVER_TIMING="1",
        PYTHONUNBUFFERED="1",
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return env


def start_gunicorn(env: dict[str, str], workdir: Path) -> tuple[ManagedProcess, str]:
    bin_dir = Path(sys.executable).parent
    collect = ManagedProcess(
        "collectstatic",
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        log=workdir / "collectstatic.log",
    ).start()
    if collect.popen.wait(timeout=300) != 0:
        raise BenchError(f"collectstatic failed:\n{collect.tail()}")
    port = free_port()
    command = [
        str(bin_dir / "gunicorn"),
        "--config",
        "deploy/gunicorn.conf.py",
        "portal.wsgi",
        "--bind",
        f"{LOOPBACK}:{port}",
    ]
    server = ManagedProcess("gunicorn", command, cwd=ROOT, env=env, log=workdir / "gunicorn.log").start()
    base_url = f"http://{LOOPBACK}:{port}"
    server.wait_until(
        lambda: requests.get(f"{base_url}/healthz", timeout=2).status_code == 200,
        timeout=60,
        ignore=(requests.RequestException,),
        what="gunicorn",
    )
    return server, base_url


def ms(seconds: float) -> float:
    return seconds * 1000


def spread(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def run(args) -> int:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-desk-"))
    steps = ("check", "check_page", "redeem", "result", "direct_check", "direct_redeem")
    rounds: list[dict[str, list[float]]] = []
    parts: dict[str, list[dict[str, float]]] = {"check": [], "check_page": [], "redeem": [], "result": []}
    with support.throwaway_database(), support.running_sandbox(LATENCY_MS) as sandbox:
        sandbox.store.lina_tokens.clear()  # only our two tokens, big enough for every redeem
        from sandbox.lina import new_token

        for code in (PORTAL_CODE, DIRECT_CODE):
            new_token(sandbox.store, account="demo-shop", code=code, value=Decimal("100000.00"))
        campaign, user = setup(sandbox.base_url)
        env = production_env(database_url=support.database_url(), static_root=str(workdir / "static"))
        server, base_url = start_gunicorn(env, workdir)
        try:
            browser = Browser(base_url)
            browser.login(user.username, PASSWORD)
            desk = Desk(browser, campaign.slug)
            desk.open()
            direct = provider_client(campaign)  # the same real LinaClient the portal builds per request

            def portal_iteration(samples, record: bool) -> None:
                t0 = time.perf_counter()
                page = desk.check(PORTAL_CODE, fragment=False)
                t1 = time.perf_counter()
                card = desk.check(PORTAL_CODE, fragment=True)
                t2 = time.perf_counter()
                redeemed = desk.redeem(card.text)
                t3 = time.perf_counter()
                result = desk.result(redeemed.headers["Location"])
                t4 = time.perf_counter()
                if record:
                    samples["check_page"].append(ms(t1 - t0))
                    samples["check"].append(ms(t2 - t1))
                    samples["redeem"].append(ms(t3 - t2))
                    samples["result"].append(ms(t4 - t3))
                    for name, answer, took in (
                        ("check_page", page, t1 - t0),
                        ("check", card, t2 - t1),
                        ("redeem", redeemed, t3 - t2),
                        ("result", result, t4 - t3),
                    ):
                        parts[name].append({**timing_of(answer), "client": ms(took)})

            def direct_iteration(samples, record: bool) -> None:
                t0 = time.perf_counter()
                info = direct.check(DIRECT_CODE)
                t1 = time.perf_counter()
                outcome = direct.redeem(DIRECT_CODE, AMOUNT)
                t2 = time.perf_counter()
                if not info.valid or outcome.balance_after is None:
                    raise BenchError("direct redeem did not succeed")
                if record:
                    samples["direct_check"].append(ms(t1 - t0))
                    samples["direct_redeem"].append(ms(t2 - t1))

            warm = {k: [] for k in steps}
            for n in range(args.warmup):  # every gunicorn worker thread opens its connections
                for step in (
                    (portal_iteration, direct_iteration)
                    if n % 2 == 0
                    else (direct_iteration, portal_iteration)
                ):
                    step(warm, record=False)
            for _round in range(args.rounds):
                samples = {k: [] for k in steps}
                for n in range(args.iterations):
                    order = (
                        (portal_iteration, direct_iteration)
                        if n % 2 == 0
                        else (direct_iteration, portal_iteration)
                    )
                    for step in order:
                        step(samples, record=True)
                rounds.append(samples)

            # Statements per request at the ledger size of now and after 10,000 more rows.
            counts: list[tuple[int, int, int, int]] = []
            for grow in (0, 0, 10_000, 0):
                if grow:
                    grow_ledger(campaign, user, grow)
                card = desk.check(PORTAL_CODE, fragment=True)
                redeemed = desk.redeem(card.text)
                result = desk.result(redeemed.headers["Location"])
                counts.append(
                    (
                        ProviderOperation.objects.count(),
                        int(timing_of(card)["sql_n"]),
                        int(timing_of(redeemed)["sql_n"]),
                        int(timing_of(result)["sql_n"]),
                    )
                )
            journal_redeems = sum(
                1 for e in sandbox.store.journal if e["operation"] == "redeem" and e["applied"]
            )
        except BenchError:
            print(f"gunicorn log (end):\n{server.tail(3000)}", file=sys.stderr)
            raise
        finally:
            server.stop()
        gunicorn_log = server.tail(2000) if args.show_log else ""
        db_label = support.database_label()

    return report(args, rounds, parts, counts, journal_redeems, db_label, started, gunicorn_log)


def report(args, rounds, parts, counts, journal_redeems, db_label, started, gunicorn_log) -> int:
    def round_medians(step: str) -> list[float]:
        return [statistics.median(r[step]) for r in rounds]

    def ratios(portal_steps: tuple[str, ...], direct_step: str) -> list[float]:
        return [
            sum(statistics.median(r[s]) for s in portal_steps) / statistics.median(r[direct_step])
            for r in rounds
        ]

    print("Cashier desk benchmark (issue 17): gunicorn + PostgreSQL + Redis vs. a direct LINA client call")
    print("  stack          : gunicorn --config deploy/gunicorn.conf.py portal.wsgi, DJANGO_ENV=production")
    print(f"  database/cache : {db_label} / Redis {os.environ['REDIS_URL'].rsplit('/', 1)[-1]!r} db")
    print(f"  sandbox        : {LATENCY_MS} ms added per provider call (127.0.0.1, this process)")
    print(f"  machine        : {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"  rounds         : {args.rounds} x {args.iterations} iterations (after {args.warmup} warm-up)")
    print("  median ms per round (min / median / max of the rounds):")
    labels = {
        "direct_check": "direct check",
        "check": "portal check (card fragment, as the till's browser asks)",
        "check_page": "portal check (whole page, without JavaScript)",
        "direct_redeem": "direct redeem",
        "redeem": "portal redeem POST (answered by a redirect)",
        "result": "portal result page GET",
    }
    for step, label in labels.items():
        lo, mid, hi = spread(round_medians(step))
        print(f"    {label:<58}: {lo:6.1f} / {mid:6.1f} / {hi:6.1f}")
    results = {
        "check": ratios(("check",), "direct_check"),
        "redeem": ratios(("redeem",), "direct_redeem"),
        "redeem+result": ratios(("redeem", "result"), "direct_redeem"),
    }
    informative = {"check, whole page": ratios(("check_page",), "direct_check")}
    print("  ratio portal / direct (min / median / max of the rounds):")
    ok = True
    for name, values in results.items():
        lo, mid, hi = spread(values)
        met = mid <= TARGETS[name]
        ok &= met
        stretch = "stretch met" if mid <= STRETCH else "stretch not met"
        print(
            f"    {name:<18}: {lo:.3f} / {mid:.3f} / {hi:.3f}  target <= {TARGETS[name]:.2f} "
            f"{'met' if met else 'MISSED'} (stretch {STRETCH:.2f}: {stretch})"
        )
    for name, values in informative.items():
        lo, mid, hi = spread(values)
        print(f"    {name:<18}: {lo:.3f} / {mid:.3f} / {hi:.3f}  (informative)")

    print("  where the portal's time goes (medians over every timed request, ms):")
    print(
        f"    {'request':<11} {'total':>6} {'sql':>6} {'stmts':>5} {'tpl':>6} {'provider':>8} "
        f"{'django rest':>11} {'outside django':>14}"
    )
    for name in ("check", "check_page", "redeem", "result"):
        rows = parts[name]

        def med(key, rows=rows):
            return statistics.median(r.get(key, 0.0) for r in rows)

        rest = statistics.median(
            r["app"] - r.get("sql", 0.0) - r.get("tpl", 0.0) - r.get("provider", 0.0) for r in rows
        )
        outside = statistics.median(r["client"] - r["app"] for r in rows)
        print(
            f"    {name:<11} {med('client'):6.1f} {med('sql'):6.1f} {med('sql_n'):5.0f} {med('tpl'):6.1f} "
            f"{med('provider'):8.1f} {rest:11.1f} {outside:14.1f}"
        )
    print("    (outside django: gunicorn, loopback HTTP and this client; COMMITs count as django rest)")

    print("  SQL statements per request, by ledger rows (check / redeem POST / result page):")
    for rows, check_n, redeem_n, result_n in counts:
        print(f"    {rows:>7} rows: {check_n} / {redeem_n} / {result_n}")
    constant = len({c[1:] for c in counts}) == 1
    ok &= constant
    print(f"  statements constant : {'yes' if constant else 'NO'}")
    print(f"  redeems applied in sandbox: {journal_redeems}")
    print(f"  elapsed             : {time.monotonic() - started:.1f} s")
    if gunicorn_log:
        print("  gunicorn log (end):\n" + gunicorn_log)
    print("  result              :", "targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=30, help="timed iterations per round (default 30)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 8 after 4 warm-ups (development)")
    parser.add_argument("--show-log", action="store_true", help="print the end of gunicorn's log")
    args = parser.parse_args()
    if args.quick:
        args.iterations, args.warmup = 8, 4
    support.silence_logs()
    sys.exit(run(args))


if __name__ == "__main__":
    main()
