"""The desk's check waits LINA_CHECK_READ_TIMEOUT at most, retries included; redeems keep the
campaign's read timeout (their answer is worth waiting for, and they are never retried)."""

from __future__ import annotations

import time

import pytest
import requests

from vouchers.providers.errors import OutcomeUnknown
from vouchers.providers.http import Transport
from vouchers.providers.lina import LinaClient

from .conftest import lina_config
from .test_lina import BASE, CODE, with_session


def test_check_uses_the_till_timeout_and_redeem_the_campaigns(mocked, sensitive, settings):
    settings.LINA_CHECK_READ_TIMEOUT = 1.5
    client = LinaClient(lina_config(read_timeout=5.0))
    with_session(mocked, sensitive, client)
    mocked.post(f"{BASE}/checkcode", json={"status": "ok", "token": "VALID", "restwert": 20, "startwert": 20})
    mocked.post(f"{BASE}/redeem", json={"status": "ok", "resp": "OK", "restwert": 10})
    client.check(CODE)
    connect, read = mocked.calls[0].request.req_kwargs["timeout"]
    assert connect == 2.0 and 1.0 < read <= 1.5
    client.redeem(CODE, 10)
    assert mocked.calls[1].request.req_kwargs["timeout"] == (2.0, 5.0)


def test_a_hung_read_stops_retrying_when_its_budget_is_spent(mocked):
    def hang(request):
        time.sleep(0.3)
        raise requests.exceptions.ReadTimeout("read timed out")

    mocked.add_callback("POST", "https://lina.test/x/checkcode", callback=hang)
    transport = Transport(
        provider="lina", campaign_id=3, base_url="https://lina.test/x", connect_timeout=1.0, read_timeout=9.0
    )
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown):
        transport.request("checkcode", "POST", "checkcode", form={}, money_moving=False, read_budget=0.5)
    assert time.monotonic() - started < 1.0
    assert len(mocked.calls) == 2  # the budget, not the retry count (3 attempts), ended it
    assert mocked.calls[1].request.req_kwargs["timeout"][1] <= 0.25
