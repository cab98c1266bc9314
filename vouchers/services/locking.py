"""Per-key locks: short-lived ones for claim transactions, owned ones in the shared cache.

On PostgreSQL a transaction-scoped advisory lock (``pg_advisory_xact_lock``) serialises every
claim on the same key across processes and machines; it is released by the commit or rollback
of the claim transaction, so it can never be held during a provider call. SQLite (the one-machine
demo) has a single writer anyway, and the partial unique constraints stay the last line of
defence on every database.
"""

from __future__ import annotations

import hashlib
import uuid

from django.db import connection, transaction


def advisory_key(namespace: str, *parts: object) -> int:
    """A signed 64-bit key for ``pg_advisory_xact_lock`` from a namespace and parts."""
    text = ":".join([namespace, *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def lock_key(namespace: str, *parts: object) -> None:
    """Block until this transaction holds the lock for the key. Must run inside ``atomic()``."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_key() must be called inside transaction.atomic()")
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_key(namespace, *parts)])


# --- Owned locks in the shared cache (poll locks) ------------------------------------------------
#
# A lock that outlives a transaction (a stock poll holds one across its provider call) lives in
# the shared cache with a TTL, and only its owner may release it: acquiring stores a random
# token, releasing deletes the key only while it still holds that token (compare-and-delete).
# Without the check, a poll that overran its TTL would delete the lock a later poll had taken
# since, and a third poll could then run beside that one.

#: Compare-and-delete in one server-side step, so no other client can slip in between.
_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def _redis_client():
    """The raw client of Django's Redis cache backend, or None for any other backend."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]  # the backend itself: ``cache`` is a proxy to it
    if not isinstance(backend, RedisCache):
        return None
    return backend._cache.get_client(write=True)


def owned_locks_acquire(keys: list[str], *, ttl: int) -> dict[str, str]:
    """Take every free lock of ``keys`` (cache keys) for ``ttl`` seconds; returns key → token of
    the ones taken (a key held by anyone else is left out).

    On Redis: one pipelined round trip of ``SET key token NX EX ttl``. Keys are the cache's own
    (prefix and version applied), so a plain ``cache.add``/``cache.delete`` of the same name
    sees the same lock. Other cache backends (the one-machine demo's file cache): ``cache.add``.
    """
    from django.core.cache import cache

    tokens = {key: uuid.uuid4().hex for key in keys}
    client = _redis_client()
    if client is None:
        return {key: token for key, token in tokens.items() if cache.add(key, token, timeout=ttl)}
    pipe = client.pipeline(transaction=False)
    for key, token in tokens.items():
        pipe.set(cache.make_and_validate_key(key), token, nx=True, ex=ttl)
    won = pipe.execute()
    return {key: token for (key, token), ok in zip(tokens.items(), won, strict=True) if ok}


def owned_locks_release(tokens: dict[str, str]) -> int:
    """Release the locks in ``tokens`` (key → token) that still hold their token; returns how many.

    A lock that expired and was taken by someone else keeps its new owner. On Redis one pipelined
    round trip of the compare-and-delete script; elsewhere a read then a delete (the file cache
    has no atomic compare-and-delete; the demo has one worker process).
    """
    from django.core.cache import cache

    if not tokens:
        return 0
    client = _redis_client()
    if client is None:
        released = 0
        for key, token in tokens.items():
            if cache.get(key) == token:
                cache.delete(key)
                released += 1
        return released
    pipe = client.pipeline(transaction=False)
    for key, token in tokens.items():
        # EVAL with the script text: a few dozen bytes more per key than EVALSHA, and no
        # "script not loaded" round trip after a Redis restart.
        pipe.eval(_RELEASE_SCRIPT, 1, cache.make_and_validate_key(key), token)
    return sum(int(n) for n in pipe.execute())
