"""50 cashiers at once against the stack: log in, check a code, redeem a small amount, repeat.

Each cashier is a thread with its own HTTP session (cookies, CSRF tokens) going through the
real desk pages as a browser would: GET the desk, POST the code, POST the redeem form it got
back, follow the redirect to the result page. The requests carry ``X-Forwarded-Proto: https``
as the TLS proxy in front of gunicorn would, so production's secure cookies and SSL redirect
apply unchanged. Latency is measured per page (p50/p95) and throughput per redeem.

``python -m drills.load_test --seconds 60`` starts its own stack, runs, checks the invariants
and exits non-zero if anything is lost or duplicated. Drills reuse :class:`Load` while they
inject faults.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

if __package__ in (None, ""):  # python drills/load_test.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drills.stack import Cashier, Stack

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_HIDDEN = re.compile(r'<input type="hidden" name="(check|code|request_token)" value="([^"]*)"')
_OPERATION = re.compile(r"/desk/operations/(\d+)/")


def unsecure_cookies(session: requests.Session) -> None:
    """Send the portal's Secure cookies over loopback HTTP: TLS ends at the (simulated) proxy.

    (A cookie policy on the session's jar is not enough: requests merges cookies into a fresh
    jar with the default policy for every request.)
    """
    for cookie in session.cookies:
        cookie.secure = False


@dataclass
class Figures:
    started: float = 0.0
    stopped: float = 0.0
    page_ms: list[float] = field(default_factory=list)
    redeem_ms: list[float] = field(default_factory=list)  # check + redeem + result, one operation
    login_ms: list[float] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)  # succeeded / refused / unknown / busy ...
    errors: Counter = field(default_factory=Counter)  # HTTP 5xx, connection errors, unexpected pages
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def seconds(self) -> float:
        return max(0.001, (self.stopped or time.monotonic()) - self.started)

    @property
    def operations(self) -> int:
        return sum(self.outcomes.values())

    def pct(self, samples: list[float], q: float) -> float:
        if not samples:
            return 0.0
        ordered = sorted(samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def lines(self) -> list[str]:
        return [
            f"load: {self.seconds:.0f} s, {self.operations} redeem attempts "
            f"({self.operations / self.seconds:.1f}/s), {len(self.page_ms)} pages "
            f"({len(self.page_ms) / self.seconds:.1f}/s)",
            f"  page latency p50 {self.pct(self.page_ms, 0.5):.0f} ms, p95 {self.pct(self.page_ms, 0.95):.0f} ms; "
            f"check→redeem→result p50 {self.pct(self.redeem_ms, 0.5):.0f} ms, "
            f"p95 {self.pct(self.redeem_ms, 0.95):.0f} ms; login p50 {self.pct(self.login_ms, 0.5):.0f} ms "
            f"({len(self.login_ms)} login pages)",
            "  outcomes: " + (", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())) or "none"),
            "  errors: " + (", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"),
        ]

    def summary(self) -> dict:
        return {
            "seconds": round(self.seconds),
            "operations": self.operations,
            "throughput": round(self.operations / self.seconds, 1),
            "p50_ms": round(self.pct(self.page_ms, 0.5)),
            "p95_ms": round(self.pct(self.page_ms, 0.95)),
            "errors": sum(self.errors.values()),
            "outcomes": dict(self.outcomes),
        }


class CashierClient:
    def __init__(self, stack: Stack, cashier: Cashier, figures: Figures):
        self.base = stack.url
        self.cashier = cashier
        self.figures = figures
        self.http = requests.Session()
        # Origin as the browser sends it: CSRF on a secure request compares it with the host.
        self.http.headers.update(
            {"X-Forwarded-Proto": "https", "Origin": f"https://127.0.0.1:{stack.ports['web']}"}
        )
        self.logged_in = False

    def _page(self, method: str, path: str, *, login: bool = False, **kwargs) -> requests.Response | None:
        started = time.monotonic()
        try:
            # Redirects are followed by hand: the cookies they set must be unsecured first.
            response = self.http.request(
                method, self.base + path, timeout=30, allow_redirects=False, **kwargs
            )
            for _hop in range(5):
                unsecure_cookies(self.http)
                if not response.is_redirect:
                    break
                response = self.http.get(
                    requests.compat.urljoin(response.url, response.headers["Location"]),
                    timeout=30,
                    allow_redirects=False,
                )
        except requests.RequestException as exc:
            self._error(type(exc).__name__)
            return None
        with self.figures.lock:
            # Logins are timed apart: 50 password hashes at once on 2 cores say little about the desk.
            (self.figures.login_ms if login else self.figures.page_ms).append(
                (time.monotonic() - started) * 1000
            )
        if response.status_code >= 400:
            self._error(f"HTTP {response.status_code}")
            return None
        return response

    def _error(self, what: str) -> None:
        with self.figures.lock:
            self.figures.errors[what] += 1

    def _outcome(self, what: str) -> None:
        with self.figures.lock:
            self.figures.outcomes[what] += 1

    def login(self) -> bool:
        page = self._page("GET", "/login/", login=True)
        token = _CSRF.search(page.text) if page is not None else None
        if token is None:
            return False
        page = self._page(
            "POST",
            "/login/",
            login=True,
            data={
                "csrfmiddlewaretoken": token.group(1),
                "username": self.cashier.username,
                "password": self.cashier.password,
                "next": "/desk/",
            },
        )
        self.logged_in = page is not None and "/login/" not in page.url
        if page is not None and not self.logged_in:
            self._error("login refused")
        return self.logged_in

    def one_redeem(self) -> None:
        started = time.monotonic()
        desk = self._page("GET", "/desk/drill-lina/")
        token = _CSRF.search(desk.text) if desk is not None else None
        if token is None:
            if desk is not None and "/login/" in desk.url:
                self.logged_in = False  # e.g. the session store lost the session
            return
        card = self._page(
            "POST",
            "/desk/drill-lina/",
            data={"csrfmiddlewaretoken": token.group(1), "code": self.cashier.code},
        )
        if card is None:
            return
        fields = dict(_HIDDEN.findall(card.text))
        if "request_token" not in fields:
            # No redeem form: the check was refused or failed; say which, as the cashier sees it.
            if 'id="provider-error"' in card.text:
                self._outcome("check: provider unavailable")
            elif "errorlist" in card.text or 'id="desk-error"' in card.text:
                self._outcome("check: refused")
            else:
                self._error("check: unexpected page")
            return
        csrf = _CSRF.search(card.text)
        amount = f"{random.choice([0.5, 1, 1.25, 2, 2.5]):.2f}"
        result = self._page(
            "POST",
            "/desk/drill-lina/redeem/",
            data={"csrfmiddlewaretoken": csrf.group(1) if csrf else "", "amount": amount, **fields},
        )
        if result is None:
            self._outcome("redeem: no page")
            return
        with self.figures.lock:
            self.figures.redeem_ms.append((time.monotonic() - started) * 1000)
        if not _OPERATION.search(result.url):
            self._outcome("redeem: busy or refused" if 'id="busy"' in result.text else "redeem: form again")
        elif 'id="slip"' in result.text:
            self._outcome("redeemed")
        elif "<h1>Outcome not known</h1>" in result.text:
            self._outcome("unknown (reconciling)")
        elif "<h1>Not redeemed</h1>" in result.text:
            self._outcome("not redeemed")
        else:
            self._error("redeem: unexpected page")


class Load:
    """Background load: ``start()``, then ``stop()`` returns the figures. Bounded by ``seconds``."""

    def __init__(self, stack: Stack, *, seconds: float, cashiers: int | None = None):
        self.stack = stack
        self.seconds = seconds
        self.cashiers = stack.users[: cashiers or len(stack.users)]
        self.figures = Figures()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def _run(self, cashier: Cashier) -> None:
        client = CashierClient(self.stack, cashier, self.figures)
        deadline = self.figures.started + self.seconds
        while not self.stopping.is_set() and time.monotonic() < deadline:
            if not client.logged_in and not client.login():
                self.stopping.wait(1.0)  # the portal is down: try again, but do not spin
                continue
            client.one_redeem()
        client.http.close()

    def start(self) -> Load:
        self.figures.started = time.monotonic()
        for cashier in self.cashiers:
            thread = threading.Thread(target=self._run, args=(cashier,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def wait(self) -> Figures:
        for thread in self.threads:
            thread.join(timeout=self.seconds + 60)
        self.figures.stopped = time.monotonic()
        return self.figures

    def stop(self) -> Figures:
        self.stopping.set()
        return self.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="50 concurrent cashiers against a production-like stack.")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--cashiers", type=int, default=50)
    args = parser.parse_args(argv)
    from drills.invariants import check_stack

    with Stack(cashiers=args.cashiers) as stack:
        figures = Load(stack, seconds=args.seconds).start().wait()
        for line in figures.lines():
            print(line)
        stack.reconcile_now()
        time.sleep(5)
        report = check_stack(stack)
        for line in report.lines():
            print(line)
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    fields = ("applied", "succeeded", "failed", "unknown_resolved", "unknown_open", "lost", "duplicated")
    (results / "load.json").write_text(
        json.dumps(
            {
                "drill": "load",
                "at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "load": figures.summary(),
                "login_p50_ms": round(statistics.median(figures.login_ms)) if figures.login_ms else None,
                "invariants": {k: getattr(report, k) for k in fields},
                "per_kind": report.per_kind,
                "ok": report.ok,
            },
            indent=2,
        )
    )
    print(f"load test: {'PASSED' if report.ok else 'FAILED'}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
