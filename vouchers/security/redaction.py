"""A logging filter that redacts secrets and voucher codes as a last line of defence.

The provider layer already logs only redacted fields; this filter catches what slips through
anywhere else (a third-party library logging a URL or form body, an exception message).
"""

from __future__ import annotations

import logging
import re

# key=value or "key": "value" pairs whose value is a secret or a full code.
_SENSITIVE_KEYS = r"(?:pass(?:word)?|shared_?key|hash|code|tokencode|pin|secret|authorization|api_?key|sessionid|csrfmiddlewaretoken)"
_PAIR = re.compile(
    r"""(?P<key>["']?\b""" + _SENSITIVE_KEYS + r"""\b["']?\s*[:=]\s*["']?)(?P<value>[^\s&"',;}]+)""",
    re.IGNORECASE,
)
_BASIC_AUTH = re.compile(r"(Basic\s+)[A-Za-z0-9+/=]{6,}", re.IGNORECASE)
# A run of 16 letters/digits with at least one digit looks like a LINA code; keep the last 4.
_CODE_LIKE = re.compile(r"\b(?=[A-Z0-9]*\d)[A-Z0-9]{12}([A-Z0-9]{4})\b")
# The same code as the pages show it, in groups of four (ABCD-EFGH-IJKL-MNOP).
_CODE_GROUPED = re.compile(r"\b(?=[A-Z0-9-]*\d)[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-([A-Z0-9]{4})\b")


def redact(text: str) -> str:
    text = _PAIR.sub(lambda m: m.group("key") + "[redacted]", text)
    text = _BASIC_AUTH.sub(r"\1[redacted]", text)
    text = _CODE_GROUPED.sub(r"••••\1", text)
    return _CODE_LIKE.sub(r"••••\1", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the log line
            message = str(record.msg)
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Formatted tracebacks are cached in exc_text; redact that text once.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class DropTemplateContextFilter(logging.Filter):
    """Drops django.template's DEBUG records: each names a missing variable *and dumps the whole
    template context* with it, which holds full codes (the cashier's token card, a sold voucher),
    CSRF tokens and form data. Set on the logger itself, so no level setting can let them out."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("django.template") and record.levelno <= logging.DEBUG)
