"""Short-lived per-key locks for claim transactions.

On PostgreSQL a transaction-scoped advisory lock (``pg_advisory_xact_lock``) serialises every
claim on the same key across processes and machines; it is released by the commit or rollback
of the claim transaction, so it can never be held during a provider call. SQLite (the one-machine
demo) has a single writer anyway, and the partial unique constraints stay the last line of
defence on every database.
"""

from __future__ import annotations

import hashlib

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
