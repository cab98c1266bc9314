"""One structured log format for every process: a JSON object per line on stdout.

Used by Django's LOGGING (web, worker, beat, management commands) and by gunicorn's own loggers
(deploy/gunicorn.conf.py), so a log collector parses one format. The redaction filter
(vouchers.security.redaction.RedactSecretsFilter) runs on every handler before this formats a record.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            # The redaction filter leaves its redacted traceback in exc_text; never re-render it.
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


# The one console handler (dictConfig form): stdout, JSON, secrets redacted. Keep "redact" on it.
CONSOLE_HANDLER = {
    "class": "logging.StreamHandler",
    "stream": "ext://sys.stdout",
    "formatter": "json",
    "filters": ["redact"],
}
FORMATTERS = {"json": {"()": "portal.logformat.JsonFormatter"}}
REDACT_FILTER = {"()": "vouchers.security.redaction.RedactSecretsFilter"}  # the same as settings.LOGGING's
