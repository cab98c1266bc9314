"""Django's Redis cache, with one redis-py client object per connection pool.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache operation,
and redis-py fills ~170 response callbacks into each new one: measured, that was 60 % of a
``cache.get`` (0.21 of 0.36 ms on a loaded 2-core machine). The desk makes several cache
operations per request (session, look-up throttle, the LINA session hash), so this is one of the
costs issue 17 measured. A redis-py client is safe to share between threads (a command takes a
connection from the pool and gives it back), and the pool itself is the one Django made, so
connections, timeouts and fork handling are exactly Django's.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))  # the pool lives in self._pools as long as this
        if client is None:
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
