"""Sessions read from the shared cache and written through to the database, surviving a cache outage.

Django's ``cached_db`` store already falls back to the database when reading from the cache
fails, but then writes the session back into the cache without catching a failure there (and
``exists``/``delete`` do not catch either). With Redis down every logged-in page was a server
error (drills/drill_redis_outage.py measured thousands of 500s in 30 s). This store treats the
cache as what it is here, a speed-up: when it cannot be reached the database answers alone, and
a log line says so.
"""

from __future__ import annotations

import logging

from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore

logger = logging.getLogger("django.contrib.sessions")


class SessionStore(CachedDBStore):
    def load(self):
        try:
            data = self._cache.get(self.cache_key)
        except Exception:
            logger.warning("Session cache unreachable; reading the session from the database")
            data = None
        if data is not None:
            return data
        session = self._get_session_from_db()
        if not session:
            return {}
        data = self.decode(session.session_data)
        try:
            self._cache.set(self.cache_key, data, self.get_expiry_age(expiry=session.expire_date))
        except Exception:
            logger.warning("Session cache unreachable; the session was not cached")
        return data

    def exists(self, session_key):
        try:
            if session_key and (self.cache_key_prefix + session_key) in self._cache:
                return True
        except Exception:
            logger.warning("Session cache unreachable; asking the database whether a session exists")
        return super(CachedDBStore, self).exists(session_key)

    def delete(self, session_key=None):
        # The database row goes first: with the cache down, a logout still ends the session for
        # good once the cache is back (a stale cached copy expires with the session's age).
        super(CachedDBStore, self).delete(session_key)
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        try:
            self._cache.delete(self.cache_key_prefix + session_key)
        except Exception:
            logger.warning("Session cache unreachable; a deleted session may stay cached until it expires")
