"""Look-up throttling per user and per campaign."""

from __future__ import annotations

import pytest

from vouchers.services.refusals import Refusal
from vouchers.services.throttle import lookup_throttle_check, lookup_throttle_failed


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
    with pytest.raises(Refusal) as caught:
        lookup_throttle_check(user_id=1, campaign_id=1)
    assert 1 <= caught.value.retry_after <= 60
    lookup_throttle_check(user_id=2, campaign_id=1)  # another cashier is not affected


def test_campaign_limit_covers_all_users(limits):
    for user in range(1, 6):
        lookup_throttle_check(user_id=user, campaign_id=7)
    with pytest.raises(Refusal):
        lookup_throttle_check(user_id=99, campaign_id=7)
    lookup_throttle_check(user_id=99, campaign_id=8)


def test_failed_lookups_have_a_tighter_limit(limits):
    lookup_throttle_check(user_id=1, campaign_id=1)
    lookup_throttle_failed(user_id=1, campaign_id=1)
    lookup_throttle_failed(user_id=1, campaign_id=1)
    with pytest.raises(Refusal) as caught:
        lookup_throttle_check(user_id=1, campaign_id=1)
    assert "failed" in caught.value.detail


@pytest.mark.django_db
def test_desk_check_is_throttled_with_a_wait_time_and_no_provider_call(
    client, cashier, lina_campaign, fake_provider, limits
):
    from django.urls import reverse

    fake_provider.add_token("ABCDEFGHIJKLMNOP", "20.00")
    client.force_login(cashier)
    url = reverse("vouchers:desk-check", kwargs={"campaign": lina_campaign.slug})
    for _ in range(3):
        assert client.post(url, {"code": "ABCDEFGHIJKLMNOP"}).status_code == 200
    response = client.post(url, {"code": "ABCDEFGHIJKLMNOP"})
    assert "Too many code checks" in response.content.decode()
    assert "seconds" in response.content.decode()
    assert fake_provider.calls["check"] == 3


@pytest.mark.django_db
def test_unknown_codes_count_as_failed_lookups(client, cashier, lina_campaign, fake_provider, limits):
    from django.urls import reverse

    client.force_login(cashier)
    url = reverse("vouchers:desk-check", kwargs={"campaign": lina_campaign.slug})
    client.post(url, {"code": "UNKNOWN000000001"})
    client.post(url, {"code": "UNKNOWN000000002"})
    response = client.post(url, {"code": "UNKNOWN000000003"})
    assert "Too many code checks" in response.content.decode()
    assert fake_provider.calls["check"] == 2
