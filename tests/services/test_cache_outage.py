"""The shared cache (Redis in production) unreachable: clear messages, never a server error.

drills/drill_redis_outage.py stopped the stack's Redis for 30 s and measured thousands of 500s
(every logged-in page: the session store) and a bulk sale that put every row it reached in
review although no purchase had been sent (the LINA client's session-hash cache). These pin
the fixes with a cache backend that fails every call, as redis-py does when Redis is down.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.cache.backends.base import BaseCache
from django.test import override_settings
from django.urls import reverse

from vouchers import staff_text as messages
from vouchers.models import ProviderOperation
from vouchers.providers.errors import ProviderUnavailable
from vouchers.providers.lina import LinaClient
from vouchers.services.throttle import ThrottleUnavailable, lookup_throttle_check, lookup_throttle_failed

from ..providers.conftest import lina_config

pytestmark = pytest.mark.django_db

CODE = "ABCD1234EFGH5678"


class UnreachableCache(BaseCache):
    """Every call fails the way the Redis backend fails with the server down."""

    def __init__(self, location, params):
        super().__init__(params)

    def _down(self, *args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    get = set = add = delete = incr = touch = has_key = clear = get_many = set_many = _down

    def __contains__(self, key):
        self._down()


CACHE_DOWN = override_settings(
    CACHES={"default": {"BACKEND": "tests.services.test_cache_outage.UnreachableCache"}}
)


def test_a_logged_in_page_is_served_from_the_database_session_when_the_cache_is_down(client, cashier):
    client.force_login(cashier)
    with CACHE_DOWN:
        response = client.get(reverse("vouchers:desk-check", kwargs={"campaign": "lina-shop"}))
    assert response.status_code == 200
    assert b'name="code"' in response.content


def test_login_and_logout_work_with_the_cache_down(client, cashier):
    cashier.set_password("a-long-cashier-password")
    cashier.save()
    with CACHE_DOWN:
        response = client.post(
            reverse("login"), {"username": cashier.username, "password": "a-long-cashier-password"}
        )
        assert response.status_code == 302
        assert client.get(reverse("vouchers:desk-home")).status_code in (200, 302)
        assert client.post(reverse("logout")).status_code == 302


def test_desk_check_with_the_cache_down_says_so_and_calls_nobody(client, cashier, fake_provider):
    fake_provider.add_token(CODE, "50.00")
    client.force_login(cashier)
    with CACHE_DOWN:
        response = client.post(
            reverse("vouchers:desk-check", kwargs={"campaign": "lina-shop"}), {"code": CODE}
        )
    assert response.status_code == 200
    assert "shared cache cannot be reached" in response.content.decode().replace("&#x27;", "'")
    assert str(messages.LOOKUP_UNAVAILABLE).startswith("Code checks are paused")
    assert not ProviderOperation.objects.exists()  # no provider call, so no ledger row either


def test_the_throttle_fails_closed_without_its_counters():
    with CACHE_DOWN, pytest.raises(ThrottleUnavailable):
        lookup_throttle_check(user_id=1, campaign_id=1)
    with CACHE_DOWN:
        lookup_throttle_failed(user_id=1, campaign_id=1)  # logged, not raised: the answer is shown


@pytest.mark.parametrize("call", ["check", "redeem"])
def test_lina_session_hash_cache_failure_is_provider_unavailable_before_anything_is_sent(call):
    client = LinaClient(lina_config(), cache=UnreachableCache("", {}))
    # No HTTP mock is installed: any request would fail differently (connection refused).
    with pytest.raises(ProviderUnavailable) as raised:
        if call == "check":
            client.check(CODE)
        else:
            client.redeem(CODE, Decimal("1.00"))
    assert "shared cache unreachable" in raised.value.detail
    assert "nothing sent" in raised.value.detail
