"""Look-up throttling per user and per campaign."""

from __future__ import annotations

import pytest

from vouchers.services.throttle import LookupThrottled, lookup_throttle_check, lookup_throttle_failed


@pytest.fixture
def limits(settings):
    settings.LOOKUP_WINDOW_SECONDS = 60
    settings.LOOKUP_LIMIT_PER_USER = 3
    settings.LOOKUP_LIMIT_PER_CAMPAIGN = 5
    settings.LOOKUP_FAILED_LIMIT_PER_USER = 2
    settings.LOOKUP_FAILED_LIMIT_PER_CAMPAIGN = 3
    return settings


def test_user_limit_then_wait_is_given(limits):
    for _ in range(3):
        lookup_throttle_check(user_id=1, campaign_id=1)
    with pytest.raises(LookupThrottled) as caught:
        lookup_throttle_check(user_id=1, campaign_id=1)
    assert 1 <= caught.value.retry_after <= 60
    lookup_throttle_check(user_id=2, campaign_id=1)  # another cashier is not affected


def test_campaign_limit_covers_all_users(limits):
    for user in range(1, 6):
        lookup_throttle_check(user_id=user, campaign_id=7)
    with pytest.raises(LookupThrottled):
        lookup_throttle_check(user_id=99, campaign_id=7)
    lookup_throttle_check(user_id=99, campaign_id=8)


def test_failed_lookups_have_a_tighter_limit(limits):
    lookup_throttle_check(user_id=1, campaign_id=1)
    lookup_throttle_failed(user_id=1, campaign_id=1)
    lookup_throttle_failed(user_id=1, campaign_id=1)
    with pytest.raises(LookupThrottled) as caught:
        lookup_throttle_check(user_id=1, campaign_id=1)
    assert caught.value.limit.kind == "failed"
