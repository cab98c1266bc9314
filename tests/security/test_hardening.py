"""Login throttling (django-axes) and security headers."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ..support.factories import PASSWORD

pytestmark = pytest.mark.django_db


def fail_login(client, username="cashier", ip="10.0.0.1"):
    return client.post(reverse("login"), {"username": username, "password": "wrong"}, REMOTE_ADDR=ip)


def test_lockout_after_repeated_failures_and_message_says_how_long(client, cashier, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert fail_login(client).status_code == 200
    response = fail_login(client)
    assert response.status_code == 429
    assert "Try again in 15 minutes" in response.content.decode()
    # Even the right password is refused while locked out.
    response = client.post(
        reverse("login"), {"username": "cashier", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )
    assert response.status_code == 429


def test_lockout_is_per_username_and_address(client, cashier, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        fail_login(client, ip="10.0.0.1")
    # Another till (address) can still sign the same cashier in.
    response = client.post(
        reverse("login"), {"username": "cashier", "password": PASSWORD}, REMOTE_ADDR="10.0.0.2"
    )
    assert response.status_code == 302


def test_cool_off_ends_the_lockout(client, cashier, settings):
    from datetime import timedelta

    from axes.models import AccessAttempt
    from django.utils import timezone

    for _ in range(settings.AXES_FAILURE_LIMIT):
        fail_login(client)
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    response = client.post(
        reverse("login"), {"username": "cashier", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )
    assert response.status_code == 302


def test_success_resets_the_failure_count(client, cashier, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        fail_login(client)
    assert (
        client.post(
            reverse("login"), {"username": "cashier", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
        ).status_code
        == 302
    )
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert fail_login(client).status_code == 200


def test_csp_and_security_headers(client, cashier):
    client.force_login(cashier)
    for url in (reverse("login"), reverse("vouchers:home")):
        response = client.get(url)
        csp = response["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
