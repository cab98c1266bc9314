"""Fixtures of the provider tests, and the guard that no log line ever holds a secret.

``_no_secrets_in_logs`` is autouse: every test in this package captures logs at DEBUG and fails
if a password, shared key, session hash, login hash or full voucher code reached any record.
Tests add every such value they create (and the sandbox tests the session hashes the client
cached) to ``sensitive``.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
import responses

from vouchers.providers.base import ProviderConfig

#: The made-up accounts behind the ``responses`` stubs of the wire tests (the sandbox has its own).
LINA_BASE = "https://lina.test/extern/tokenapi"
ALLSAFE_BASE = "https://allsafe.test/api"
USERNAME = "api-user"
PASSWORD = "Pa55-word-never-logged"
SHARED_KEY = "Shared-Key-never-logged"
PUBLIC_IP = "203.0.113.7"

FACTORY_SECRETS = ["api-password-secret", "shared-key-secret"]  # tests/support/factories.py


@pytest.fixture
def sensitive() -> list[str]:
    return [PASSWORD, SHARED_KEY, *FACTORY_SECRETS]


def _record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), str(record.exc_text or "")]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(logging.Formatter().formatException(record.exc_info))
    standard = logging.LogRecord("", 0, "", 0, "", (), None).__dict__
    parts.extend(f"{k}={v!r}" for k, v in record.__dict__.items() if k not in standard)
    return "\n".join(parts)


def leaked_values(records, sensitive) -> list[str]:
    text = "\n".join(_record_text(record) for record in records)
    return sorted({value for value in sensitive if value and len(value) >= 4 and value in text})


@pytest.fixture(autouse=True)
def _no_secrets_in_logs(caplog, sensitive):
    caplog.set_level(logging.DEBUG)
    yield
    leaked = leaked_values([*caplog.get_records("setup"), *caplog.get_records("call")], sensitive)
    assert not leaked, f"secrets or full codes reached the logs: {leaked}"


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.PROVIDER_RETRY_BACKOFF_SECONDS = 0
    settings.PROVIDER_READ_RETRIES = 2


@pytest.fixture
def mocked():
    """A responses mock that fails the test on any request no stub answers."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def lina_config(**overrides) -> ProviderConfig:
    config = ProviderConfig(
        campaign_id=7,
        provider="lina",
        base_url=LINA_BASE,
        username=USERNAME,
        password=PASSWORD,
        shared_key=SHARED_KEY,
        connect_timeout=2.0,
        read_timeout=5.0,
    )
    return replace(config, **overrides)


def allsafe_config(**overrides) -> ProviderConfig:
    config = ProviderConfig(
        campaign_id=8,
        provider="allsafe",
        base_url=ALLSAFE_BASE,
        username=USERNAME,
        password=PASSWORD,
        connect_timeout=2.0,
        read_timeout=5.0,
    )
    return replace(config, **overrides)
