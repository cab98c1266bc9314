"""Logs: one JSON object per line on stdout from Django, gunicorn and Celery alike, secrets redacted.

Each case runs in a fresh interpreter so it sees the logging configuration a real process gets
(pytest's own capture handlers are not in the way).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRET_LINE = "login failed password=hunter2-secret for code ABCDEFGHJKLM7QRS"


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LOG_LEVEL"))}
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]


def assert_redacted_entry(entry: dict, logger: str) -> None:
    assert entry["logger"] == logger
    assert entry["level"] == "WARNING"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])
    assert "hunter2" not in entry["message"]
    assert "ABCDEFGHJKLM7QRS" not in entry["message"]
    assert entry["message"].endswith("••••7QRS")


def test_django_logs_json_lines_to_stdout_with_secrets_redacted():
    result = run_python(
        "import django, logging; django.setup()\n"
        f"logging.getLogger('vouchers.services').warning({SECRET_LINE!r})\n"
        "try:\n    raise ValueError('shared_key=abc123secret')\n"
        "except ValueError:\n    logging.getLogger('vouchers').exception('failed')\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    first, second = json_lines(result.stdout)
    assert_redacted_entry(first, "vouchers.services")
    assert second["level"] == "ERROR"
    assert "ValueError" in second["exception"]
    assert "abc123secret" not in second["exception"]


def test_every_handler_of_the_settings_redacts():
    from django.conf import settings

    handlers = settings.LOGGING["handlers"]
    assert handlers
    for name, handler in handlers.items():
        assert "redact" in handler.get("filters", []), name
        assert handler.get("formatter") == "json", name


def test_gunicorn_logs_in_the_same_format():
    result = run_python(
        "import logging.config, runpy\n"
        "conf = runpy.run_path('deploy/gunicorn.conf.py')\n"
        "logging.config.dictConfig(conf['logconfig_dict'])\n"
        f"logging.getLogger('gunicorn.access').warning({SECRET_LINE!r})\n"
        "print(conf['access_log_format'])\n"
    )
    assert result.returncode == 0, result.stderr
    *entries, access_format = result.stdout.strip().splitlines()
    assert_redacted_entry(json_lines("\n".join(entries))[0], "gunicorn.access")
    # The path only: query strings and referrers can carry codes and tokens.
    assert "%(U)s" in access_format
    assert "%(r)s" not in access_format and "%(q)s" not in access_format and "%(f)s" not in access_format


def test_celery_worker_and_beat_log_in_the_same_format():
    result = run_python(
        "import logging\n"
        "from celery import signals\n"
        "from portal.celery import app\n"
        "assert signals.setup_logging.send(sender=None, loglevel='INFO', logfile=None, format='', colorize=False)\n"
        f"logging.getLogger('celery.app.trace').warning({SECRET_LINE!r})\n"
    )
    assert result.returncode == 0, result.stderr
    assert_redacted_entry(json_lines(result.stdout)[-1], "celery.app.trace")
