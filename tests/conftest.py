"""Shared fixtures and the rules for tests that need real services.

Tests marked ``postgres``, ``redis`` or ``chromium`` skip with a reason where the service is
absent, and fail instead when ``CI=true``: CI must never pass by skipping what it is there to run.
"""

from __future__ import annotations

import os
import shutil
from functools import cache

import pytest

CI = os.environ.get("CI", "").lower() == "true"


@cache
def _redis_reason() -> str | None:
    url = os.environ.get("REDIS_URL")
    if not url:
        return "REDIS_URL is not set"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as exc:
        return f"Redis at REDIS_URL is not reachable ({type(exc).__name__})"
    return None


@cache
def _chromium_reason() -> str | None:
    if not shutil.which("chromium") and not os.path.exists("/usr/bin/chromium"):
        return "Debian's chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed"
    return None


def _postgres_reason() -> str | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return f"the test database is {connection.vendor}, not PostgreSQL (set DATABASE_URL)"
    return None


def pytest_runtest_setup(item):
    for marker, probe in (
        ("postgres", _postgres_reason),
        ("redis", _redis_reason),
        ("chromium", _chromium_reason),
    ):
        if item.get_closest_marker(marker) is None:
            continue
        reason = probe()
        if reason is None:
            continue
        if CI:
            pytest.fail(f"CI=true but this test needs {marker}: {reason}", pytrace=False)
        pytest.skip(f"needs {marker}: {reason}")


@pytest.fixture(autouse=True)
def _isolated_cache(settings, tmp_path):
    """Each test gets an empty local cache, so cached session hashes and cool-downs never leak."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(tmp_path)}
    }
    from django.core.cache import caches

    caches["default"].clear()
    yield


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Real hashing costs ~0.3 s a user; tests create hundreds of users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


#: The made-up provider hosts the factories and fakes use (RFC 2606 .test names never resolve).
TEST_PROVIDER_HOSTS = {
    "lina": ["https://lina.example.test", "https://lina.test"],
    "allsafe": ["https://allsafe.example.test", "https://allsafe.test"],
}


@pytest.fixture(autouse=True)
def _test_provider_hosts(settings):
    """The development allow-list (documented hosts, loopback on any port) plus the test hosts."""
    settings.PROVIDER_ALLOWED_HOSTS = {
        provider: [*settings.PROVIDER_ALLOWED_HOSTS.get(provider, []), *extra]
        for provider, extra in TEST_PROVIDER_HOSTS.items()
    }


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _default_language_after_each_test():
    """A request in German leaves German active in the test's thread (LocaleMiddleware activates
    the request's language and never resets it), so code a later test runs outside a request
    would write or render German. Back to the default language after every test."""
    yield
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)


from .support.factories import *  # noqa: E402,F403  (fixtures: users per role, campaigns)
from .support.fakes import fake_provider  # noqa: E402,F401
from .support.sales import lina_template, plain_template  # noqa: E402,F401
from .support.sandbox import sandbox  # noqa: E402,F401
from .support.workers import celery_worker_process  # noqa: E402,F401
