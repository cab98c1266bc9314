"""Settings: embedded development defaults, a production mode that refuses bad configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "DJANGO_SECRET_KEY": "x" * 20 + "-production-secret-key-for-tests-only-0123456789",
    "DATABASE_URL": "sqlite:////tmp/portal-prod-check.sqlite3",
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "DJANGO_ALLOWED_HOSTS": "portal.example.com",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "CELERY_", "FIELD_ENC", "SANDBOX_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_is_clean_in_production_mode():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "missing",
    [
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
        "FIELD_ENCRYPTION_KEYS",
        "DJANGO_ALLOWED_HOSTS",
        "CELERY_BROKER_URL",
    ],
)
def test_production_refuses_to_start_without_required_variable(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert missing in result.stderr
    assert "Traceback" not in result.stderr.splitlines()[-1]


def test_production_refuses_the_development_secret_key():
    from portal.settings import DEV_SECRET_KEY

    result = run_manage("check", env={**PRODUCTION_ENV, "DJANGO_SECRET_KEY": DEV_SECRET_KEY})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_never_enables_the_sandbox():
    result = run_manage("check", env={**PRODUCTION_ENV, "SANDBOX_ENABLED": "true"})
    assert result.returncode != 0
    assert "SANDBOX_ENABLED" in result.stderr


def test_malformed_variable_is_named():
    result = run_manage("check", env={"SESSION_COOKIE_AGE": "a-shift"})
    assert result.returncode != 0
    assert "SESSION_COOKIE_AGE" in result.stderr


def test_malformed_encryption_key_is_named():
    result = run_manage("check", env={"FIELD_ENCRYPTION_KEYS": "not-a-key"})
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS entry #1 is not a valid Fernet key" in result.stdout + result.stderr


def test_unknown_environment_name_is_refused():
    result = run_manage("check", env={"DJANGO_ENV": "staging"})
    assert result.returncode != 0
    assert "DJANGO_ENV" in result.stderr


def test_development_defaults_need_no_variables():
    result = run_manage("check", env={})
    assert result.returncode == 0, result.stderr


@pytest.mark.postgres
@pytest.mark.django_db
def test_suite_runs_on_postgresql_when_configured():
    from django.db import connection

    assert connection.vendor == "postgresql"


def _print_setting(name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_manage("shell", "-c", f"from django.conf import settings; print(settings.{name})", env=env)


def test_production_allows_only_the_documented_provider_hosts_over_https():
    result = _print_setting("PROVIDER_ALLOWED_HOSTS", PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(
        {
            "lina": ["https://api.lina.de:443", "https://login.amadeus360.de:443"],
            "allsafe": ["https://allsafe-api.poweredbytechsys.co.za:443"],
        }
    )


def test_development_adds_loopback_for_the_sandbox():
    result = _print_setting("PROVIDER_ALLOWED_HOSTS['lina']", {"DJANGO_ENV": "development"})
    assert result.returncode == 0, result.stderr
    assert "https://api.lina.de:443" in result.stdout and "http://127.0.0.1:*" in result.stdout


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://lina-proxy.internal:8080", "may only list https endpoints"),
        ("http://127.0.0.1.evil.example:80", "may only list https endpoints"),
        ("https://api.lina.de/extern", "malformed"),
        ("api.lina.de:99999", "malformed"),
    ],
)
def test_a_bad_provider_allow_list_is_refused_at_start(value, expected):
    result = _print_setting("PROVIDER_ALLOWED_HOSTS", {**PRODUCTION_ENV, "LINA_ALLOWED_HOSTS": value})
    assert result.returncode != 0
    assert "LINA_ALLOWED_HOSTS" in result.stderr and expected in result.stderr


def test_production_accepts_plain_http_to_loopback_only():
    env = {**PRODUCTION_ENV, "LINA_ALLOWED_HOSTS": "http://127.0.0.1:8190,api.lina.de"}
    result = _print_setting("PROVIDER_ALLOWED_HOSTS['lina']", env)
    assert result.returncode == 0, result.stderr
    assert "['http://127.0.0.1:8190', 'https://api.lina.de:443']" in result.stdout


def test_a_redis_broker_has_bounded_socket_timeouts():
    """Without them kombu waits forever on a broker host that drops packets (tests/sales/
    test_broker_down.py shows what the bound buys); the worker's BRPOP answers every second."""
    code = "from django.conf import settings; o = settings.CELERY_BROKER_TRANSPORT_OPTIONS; print(o['socket_connect_timeout'], o['socket_timeout'])"
    result = run_manage("shell", "-c", code, env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["2.0", "5.0"]
    result = run_manage("shell", "-c", code, env={**PRODUCTION_ENV, "CELERY_BROKER_SOCKET_TIMEOUT": "3"})
    assert result.stdout.split()[-2:] == ["2.0", "3.0"]
