"""The look-up throttle reads its counters, and the keys its caller adds, in one round trip."""

from __future__ import annotations

import time

import pytest
from django.core.cache import caches

from vouchers.services import throttle
from vouchers.services.refusals import Refusal


class Recording:
    """The cache as the throttle sees it, recording each operation it asks for."""

    def __init__(self, backend, calls: list[str]):
        self._backend, self._calls = backend, calls

    def __getattr__(self, name):
        method = getattr(self._backend, name)

        def recorded(*args, **kwargs):
            self._calls.append(name)
            return method(*args, **kwargs)

        return recorded


@pytest.fixture
def calls(monkeypatch):
    seen: list[str] = []
    monkeypatch.setattr(throttle, "cache", Recording(caches["default"], seen))
    return seen


def test_counters_and_extra_keys_in_one_read(calls, settings):
    settings.LOOKUP_LIMIT_PER_USER = 3
    caches["default"].set("providers:lina:7:session", {"hash": "x"})
    calls.clear()
    found = throttle.lookup_throttle_check(
        user_id=1, campaign_id=7, also=["providers:lina:7:session", "absent"]
    )
    assert found == {"providers:lina:7:session": {"hash": "x"}}
    # One read; each new counter is added at 1 (one write each, no add-then-incr).
    assert calls == ["get_many", "add", "add"]

    calls.clear()
    throttle.lookup_throttle_check(user_id=1, campaign_id=7)
    assert calls == ["get_many", "incr", "incr"]  # existing counters: incremented only

    throttle.lookup_throttle_check(user_id=1, campaign_id=7)
    with pytest.raises(Refusal) as refused:
        throttle.lookup_throttle_check(user_id=1, campaign_id=7)  # the fourth in the window
    assert refused.value.code == "LookupThrottled"


def test_a_counter_added_meanwhile_by_another_request_is_still_counted(monkeypatch):
    """Read as missing, then added by a concurrent look-up before this one's add: incremented."""
    limit = next(x for x in throttle._limits() if x.scope == "user" and x.kind == "all")
    start, _left = throttle.window_of(time.time(), limit.window_seconds)
    key = throttle._key(limit, user_id=5, campaign_id=9, window=start)
    backend = caches["default"]

    class OtherRequestBetween(Recording):
        def get_many(self, keys, *args, **kwargs):
            found = backend.get_many(keys, *args, **kwargs)
            backend.add(key, 1, timeout=60)  # the other request's look-up, between read and write
            return found

    monkeypatch.setattr(throttle, "cache", OtherRequestBetween(backend, []))
    throttle.lookup_throttle_check(user_id=5, campaign_id=9)
    assert backend.get(key) == 2


@pytest.mark.django_db
def test_the_check_hands_the_clients_keys_to_the_throttle_and_primes_the_client(
    calls, monkeypatch, lina_campaign, cashier, fake_provider
):
    """services/tokens.token_check: one read for the counters and the client's keys, and the
    client gets what was found (a client without shared reads, like the fake, gets nothing)."""
    from vouchers.services import tokens

    fake_provider.add_token("ABCD1234EFGH5678", "50.00")
    real_lina_client = tokens._lina_client
    primed = []

    def with_shared_reads(campaign):
        client = real_lina_client(campaign)
        client.shared_reads = lambda: ["providers:lina:test:session", "providers:lina:test:cooldown"]
        client.prime_shared_reads = primed.append
        return client

    monkeypatch.setattr(tokens, "_lina_client", with_shared_reads)
    caches["default"].set("providers:lina:test:session", {"hash": "h"})
    calls.clear()
    card = tokens.token_check(campaign=lina_campaign, user=cashier, code="ABCD1234EFGH5678")
    assert card.valid
    assert calls.count("get_many") == 1 and "get" not in calls
    assert primed == [{"providers:lina:test:session": {"hash": "h"}}]
