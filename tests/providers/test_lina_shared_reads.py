"""The LINA client's shared-cache reads done by its caller in one round trip (issue 17 item 2)."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from vouchers.providers.errors import RateLimited
from vouchers.providers.lina import LinaClient, cooldown_key, session_key

from .conftest import LINA_BASE, PUBLIC_IP, USERNAME, lina_config
from .test_lina import CODE, SESSION, form_of, with_session

VALID = {"status": "ok", "token": "VALID", "tokencode": CODE, "startwert": "10,00", "restwert": "10,00"}


class CountingCache:
    """The test cache, counting the reads that go to it."""

    def __init__(self):
        self.reads: list[str] = []

    def __getattr__(self, name):
        method = getattr(cache, name)
        if name in ("get", "get_many"):

            def counted(*args, **kwargs):
                self.reads.append(name)
                return method(*args, **kwargs)

            return counted
        return method


@pytest.fixture
def counting():
    return CountingCache()


@pytest.fixture
def client(counting) -> LinaClient:
    return LinaClient(lina_config(), cache=counting)


def test_primed_reads_replace_the_clients_own_round_trips(mocked, sensitive, client, counting):
    with_session(mocked, sensitive, client)
    mocked.post(f"{LINA_BASE}/checkcode", json=VALID)
    keys = client.shared_reads()
    assert keys[0] == session_key(client.config.campaign_id)
    assert cooldown_key(LINA_BASE, USERNAME) in keys

    client.prime_shared_reads(cache.get_many(keys))  # what the desk's throttle does, in one go
    assert client.check(CODE).valid
    assert counting.reads == []  # session hash and guard came from the primed values
    assert form_of(mocked.calls[0])["hash"] == SESSION

    # Primed values are used once: the next call reads the cache itself (session, then guard).
    client.check(CODE)
    assert counting.reads == ["get", "get_many"]


def test_a_primed_cool_down_is_honoured(mocked, sensitive, client):
    with_session(mocked, sensitive, client)
    cache.set(cooldown_key(LINA_BASE, USERNAME), time.time() + 300)
    client.prime_shared_reads(cache.get_many(client.shared_reads()))
    with pytest.raises(RateLimited):
        client.check(CODE)
    assert len(mocked.calls) == 0  # nothing sent


def test_a_session_missing_from_the_primed_values_logs_in(mocked, sensitive, client, counting):
    """Primed without a session hash: the client logs in as it would after its own read."""
    sensitive.append(SESSION)
    mocked.post(f"{LINA_BASE}/ping", json={"status": "OK", "myip": PUBLIC_IP})
    mocked.post(f"{LINA_BASE}/login", json={"status": "OK", "hash": SESSION})
    mocked.post(f"{LINA_BASE}/checkcode", json=VALID)
    client.prime_shared_reads(cache.get_many(client.shared_reads()))
    assert client.check(CODE).valid
    assert client.logins == 1
