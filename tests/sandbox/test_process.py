"""``python -m sandbox`` as its own process: refuses production, seeds and prints the demo codes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from portal.processes import ManagedProcess, ProcessError, free_port

ROOT = Path(__file__).resolve().parents[2]


def _env(**changes) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ENV", "SANDBOX_ENABLED")}
    env.update(changes)
    return env


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"DJANGO_ENV": "production"}, "DJANGO_ENV=production"),
        ({"DJANGO_ENV": " Production "}, "DJANGO_ENV=production"),
        ({"SANDBOX_ENABLED": "false"}, "SANDBOX_ENABLED"),
        ({"SANDBOX_ENABLED": "0"}, "SANDBOX_ENABLED"),
        ({"DJANGO_ENV": "production", "SANDBOX_ENABLED": "true"}, "DJANGO_ENV=production"),
    ],
)
def test_refuses_to_start_in_production_or_when_switched_off(changes, reason):
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=_env(**changes),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "refuse to start" in result.stderr and reason in result.stderr
    with pytest.raises(requests.ConnectionError):
        requests.post(f"http://127.0.0.1:{port}/lina/extern/tokenapi/ping", timeout=1)


def _start(*args: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    command = [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port), "--quiet", *args]
    process = ManagedProcess("sandbox", command, cwd=ROOT, env=_env(SANDBOX_ENABLED="true"), capture=True)
    url = f"http://127.0.0.1:{port}"
    try:
        process.start().wait_until(
            lambda: requests.post(f"{url}/lina/extern/tokenapi/ping", timeout=1),
            timeout=20,
            ignore=(requests.ConnectionError,),
        )
    except ProcessError:
        raise AssertionError("the sandbox process did not start: " + process.communicate()[1]) from None
    return process, url


def _stop(process: ManagedProcess) -> tuple[str, str]:
    return process.communicate(timeout=10)  # stops only the process this test started


def test_runs_alone_seeds_demo_data_and_prints_the_demo_codes():
    process, url = _start()
    try:
        assert requests.get(
            f"{url}/allsafe/availability", auth=("demo-allsafe", "demo-allsafe-password"), timeout=5
        ).ok
        assert (
            requests.get(f"{url}/_sandbox/tokens/DEMOHEALTHY00100", timeout=5).json()["remaining"] == "100.00"
        )
    finally:
        out, _err = _stop(process)
    assert f"listening on {url}" in out
    for expected in (
        "demo-shop / demo-lina-password / demo-lina-shared-key",
        "second-shop / second-lina-password / second-lina-shared-key",
        "demo-allsafe / demo-allsafe-password",
        "Geburtstag: 5f0c2b7e9a1d4c38, layouts 1,2",
        "DEMOFULLONLY2500",
        "DEMOEXPIRED30EUR",
        "DEMOUSEDUP000000",
        "DEMOPARTLY20LEFT",
        f"{url}/lina/extern/tokenapi",
    ):
        assert expected in out


def test_no_seed_and_default_latency_for_benchmarks():
    process, url = _start("--no-seed", "--latency-ms", "200")
    try:
        assert requests.get(f"{url}/_sandbox/tokens", timeout=5).json() == []
        started = time.monotonic()
        requests.post(f"{url}/lina/extern/tokenapi/ping", timeout=5)
        assert time.monotonic() - started >= 0.2
    finally:
        out, _err = _stop(process)
    assert "DEMOHEALTHY00100" not in out and "200 ms" in out


def test_lina_lockout_defaults_can_be_set_on_the_command_line():
    process, url = _start("--lina-fail-threshold", "2", "--lina-lockout", "42")
    try:
        accounts = requests.get(f"{url}/_sandbox/lina/accounts", timeout=5).json()
    finally:
        _stop(process)
    assert {(a["fail_threshold"], a["lockout_seconds"]) for a in accounts} == {(2, 42.0)}
