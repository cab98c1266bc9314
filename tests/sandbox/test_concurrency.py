"""One lock over the state: concurrent money-moving calls never overspend; many slow clients at once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from .lina_client import call, login


def test_twenty_concurrent_redeems_never_overspend_a_token(sandbox):
    sandbox.add_token("RACE000000000001", "50.00")
    session = login(sandbox)
    sandbox.set_latency(50)  # all twenty are in flight together

    def redeem(_):
        return call(sandbox, "redeem", hash=session, code="RACE000000000001", amount="10.00").json()["resp"]

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(redeem, range(20)))
    assert results.count("OK") == 5 and results.count("Err") == 15
    assert sandbox.token("RACE000000000001")["remaining"] == "0.00"
    applied = sandbox.journal("lina", "redeem", applied=True)
    assert len(applied) == 5
    assert sorted(e["balance_after"] for e in applied) == ["0.00", "10.00", "20.00", "30.00", "40.00"]


def test_concurrent_allocations_hand_out_each_voucher_once(sandbox):
    sandbox.set_stock("Takealot", 250, 8, vault="Main vault")

    def allocate(n):
        response = requests.post(
            f"{sandbox.allsafe_url}/allocate",
            json={"vendor": "Takealot", "value": 250, "reference": f"c{n}"},
            auth=("demo-allsafe", "demo-allsafe-password"),
            timeout=10,
        )
        return response.status_code, response.json().get("pin")

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(allocate, range(20)))
    pins = [pin for status, pin in results if status == 200]
    assert len(pins) == 8 and len(set(pins)) == 8
    assert sum(1 for status, _ in results if status == 492) == 12


def test_a_counted_fault_hits_exactly_that_many_concurrent_calls(sandbox):
    sandbox.set_fault("lina", "ping", "http_500", count=7)
    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(lambda _: call(sandbox, "ping").status_code, range(20)))
    assert statuses.count(500) == 7 and statuses.count(200) == 13


def test_two_hundred_concurrent_slow_requests_are_served_in_parallel(sandbox):
    sandbox.set_fault("lina", "ping", "latency", ms=1000, count=None)
    started = time.monotonic()
    with ThreadPoolExecutor(200) as pool:
        answers = list(pool.map(lambda _: call(sandbox, "ping", timeout=15).json()["status"], range(200)))
    elapsed = time.monotonic() - started
    assert answers == ["OK"] * 200
    assert elapsed < 6, f"200 one-second calls took {elapsed:.1f}s: not served in parallel"


def test_keep_alive_calls_are_not_slowed_by_delayed_acks(sandbox):
    with requests.Session() as http:
        http.post(f"{sandbox.lina_url}/ping", timeout=5)
        started = time.monotonic()
        for _ in range(100):
            http.post(f"{sandbox.lina_url}/ping", timeout=5)
        elapsed = time.monotonic() - started
    assert elapsed < 2, f"100 keep-alive pings took {elapsed:.2f}s (Nagle/delayed-ACK stalls are ~40 ms each)"
