"""Throttling of code look-ups, so staff accounts cannot be used to guess voucher codes.

Two fixed-window counters per look-up, in the shared cache (Redis in production): one per user
and one per campaign. Failed look-ups (unknown or invalid codes) have their own, tighter limits:
guessing produces failures, and LINA itself answers DENIED after too many failed calls
(providers.md), which would stop every till of the shop. Keeping our limit below LINA's keeps the
shop clear of that lock-out.

When the shared cache cannot be reached the limiter fails closed: no look-up is made
(:class:`ThrottleUnavailable`), because without the counters nothing would stop code guessing
and LINA's own DENIED lock-out would then stop every till of the shop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from ..staff_text import lookup_throttled_text
from .refusals import Refusal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    scope: str  # "user" or "campaign"
    kind: str  # "all" or "failed"
    count: int
    window_seconds: int


class ThrottleUnavailable(Exception):
    """The shared cache holding the counters cannot be reached: look-ups are refused for now."""


def _limits() -> list[Limit]:
    return [
        Limit("user", "all", settings.LOOKUP_LIMIT_PER_USER, settings.LOOKUP_WINDOW_SECONDS),
        Limit("campaign", "all", settings.LOOKUP_LIMIT_PER_CAMPAIGN, settings.LOOKUP_WINDOW_SECONDS),
        Limit("user", "failed", settings.LOOKUP_FAILED_LIMIT_PER_USER, settings.LOOKUP_WINDOW_SECONDS),
        Limit(
            "campaign", "failed", settings.LOOKUP_FAILED_LIMIT_PER_CAMPAIGN, settings.LOOKUP_WINDOW_SECONDS
        ),
    ]


def _key(limit: Limit, *, user_id: int, campaign_id: int, window: int) -> str:
    owner = user_id if limit.scope == "user" else campaign_id
    return f"lookup-throttle:{limit.scope}:{limit.kind}:{owner}:{window}"


def window_of(now: float, seconds: int) -> tuple[int, int]:
    """The fixed window ``now`` falls in: (its start, the whole seconds left in it)."""
    start = int(now // seconds) * seconds
    return start, start + seconds - int(now)


def count_one(key: str, window_seconds: int, *, present: bool | None = None) -> None:
    """One more on the fixed-window counter ``key``. add() then incr() is atomic in Redis and
    locmem, so concurrent requests are all counted.

    ``present``: whether a read just now found the key (None: not known). Knowing it saves a
    round trip: an existing counter is only incremented, a missing one only added (and
    incremented after all if another request added it first)."""
    timeout = window_seconds + 5
    if present is None:
        cache.add(key, 0, timeout=timeout)
    elif not present and cache.add(key, 1, timeout=timeout):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr: start the window again
        cache.set(key, 1, timeout=timeout)


def lookup_throttle_check(*, user_id: int, campaign_id: int, also: Sequence[str] = ()) -> dict:
    """Refuse (a Refusal with ``retry_after``) if a limit is already reached; counts this look-up otherwise.

    Every counter is read in one round trip (``get_many``), together with the cache keys in
    ``also`` (the LINA client's session hash and guard, services/tokens.py), whose values found
    are returned: the desk's check then reads the shared cache once before its call."""
    now = time.time()
    keyed = []
    for limit in _limits():
        start, remaining = window_of(now, limit.window_seconds)
        keyed.append((limit, _key(limit, user_id=user_id, campaign_id=campaign_id, window=start), remaining))
    try:
        found = cache.get_many([key for _limit, key, _remaining in keyed] + list(also))
        for limit, key, remaining in keyed:
            if (found.get(key) or 0) >= limit.count:
                wait = max(1, int(remaining))
                raise Refusal(
                    lookup_throttled_text(wait),
                    field="code",
                    code="LookupThrottled",
                    retry_after=wait,
                    detail=f"{limit.scope} {limit.kind} limit",  # which limit, for the log
                )
        for limit, key, _remaining in keyed:
            if limit.kind == "all":
                count_one(key, limit.window_seconds, present=key in found)
    except Refusal:
        raise
    except Exception as exc:
        logger.warning(
            "Look-up throttle: shared cache unreachable (%s); look-ups refused", type(exc).__name__
        )
        raise ThrottleUnavailable from exc
    return {key: found[key] for key in also if key in found}


def lookup_throttle_failed(*, user_id: int, campaign_id: int) -> None:
    """Count a failed look-up (the code was unknown or invalid)."""
    now = time.time()
    try:
        for limit in _limits():
            if limit.kind == "failed":
                _incr(limit, user_id=user_id, campaign_id=campaign_id, now=now)
    except Exception as exc:
        # The check before this call got through, so the cache went away in between; the next
        # look-up's check fails closed. The cashier still sees the answer LINA already gave.
        logger.warning(
            "Look-up throttle: shared cache unreachable (%s); failure not counted", type(exc).__name__
        )


def _incr(limit: Limit, *, user_id: int, campaign_id: int, now: float) -> None:
    start, _remaining = window_of(now, limit.window_seconds)
    count_one(_key(limit, user_id=user_id, campaign_id=campaign_id, window=start), limit.window_seconds)
