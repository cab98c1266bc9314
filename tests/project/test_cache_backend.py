"""portal/cache.py: Django's Redis cache, reusing one redis-py client per connection pool."""

from __future__ import annotations

import os
import threading

import pytest

from portal.cache import RedisCache
from portal.processes import closed_port_url


def backend(location: str) -> RedisCache:
    return RedisCache(location, {"KEY_PREFIX": "portal-cache-test", "OPTIONS": {"socket_connect_timeout": 1}})


@pytest.mark.redis
def test_operations_behave_as_djangos_and_share_one_client():
    cache = backend(os.environ["REDIS_URL"])
    cache.delete_many(["a", "b", "n"])
    cache.set("a", {"x": 1})
    assert cache.get("a") == {"x": 1}
    assert cache.get_many(["a", "b"]) == {"a": {"x": 1}}
    assert cache.add("n", 1) is True and cache.add("n", 5) is False
    assert cache.incr("n") == 2
    client = cache._cache.get_client()
    assert cache._cache.get_client(write=True) is client  # one server: one pool, one client

    # Shared by threads, as gunicorn's gthread workers share it.
    errors = []

    def count():
        try:
            for _ in range(50):
                cache.incr("n")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=count) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert cache.get("n") == 202
    cache.delete_many(["a", "b", "n"])


def test_an_unreachable_server_still_raises_as_djangos_does():
    """The session store and the throttle rely on the exception to fall back or fail closed."""
    cache = backend(closed_port_url().replace("http://", "redis://"))
    with pytest.raises(Exception, match=r"(?i)connect|refused"):
        cache.get("a")
    with pytest.raises(Exception, match=r"(?i)connect|refused"):
        cache.get("a")  # the reused client does not hide the second failure either
