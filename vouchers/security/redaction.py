"""Removing secrets and voucher codes: the one redaction function, and the logging filter.

:func:`redact` serves every place that lets provider text out (log lines, body excerpts, a
provider's reason shown to staff); :func:`ledger_safe` cleans a provider's answer before it is
stored in the ledger. The logging filter is the last line of defence for what slips through
anywhere else (a third-party library logging a URL or form body, an exception message).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from ..values.codes import format_code, mask_code, normalize_code

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


def redact(text: str, secrets: Iterable[str] = (), *, limit: int | None = None, mark="[redacted]") -> str:
    """``text`` without ``secrets`` (replaced by ``mark``), secret-looking pairs and code-like runs.

    With ``limit`` the result is an excerpt: white space folded, at most ``limit`` characters.
    """
    for secret in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, mark)
    if limit is not None:
        text = " ".join(text.split())
    text = _PAIR.sub(lambda m: m.group("key") + "[redacted]", text)
    text = _BASIC_AUTH.sub(r"\1[redacted]", text)
    text = _CODE_GROUPED.sub(r"••••\1", text)
    text = _CODE_LIKE.sub(r"••••\1", text)
    return text if limit is None else text[:limit]


#: Answer keys never stored (images and session hashes), and keys whose value is a code (masked).
_DROPPED_KEYS = {"qrcode", "hash"}
_CODE_KEYS = {"code", "pin", "tokencode"}


def ledger_safe(raw: Any, codes: Iterable[str] = ()) -> Any:
    """A provider's answer for the ledger: no QR image or hash, codes masked, and any text that
    holds one of ``codes`` (in any spelling) replaced."""
    spellings = {s for c in codes if c for s in (c, normalize_code(c), format_code(c)) if s}

    def clean(value, key=""):
        if isinstance(value, dict):
            return {
                k: clean(v, str(k).lower()) for k, v in value.items() if str(k).lower() not in _DROPPED_KEYS
            }
        if isinstance(value, list):
            return [clean(v) for v in value]
        if key in _CODE_KEYS and value:
            return mask_code(str(value))
        if isinstance(value, str) and any(s in value for s in spellings):
            return "[redacted]"
        if isinstance(value, str | int | float | bool) or value is None:
            return value
        return str(value)

    return clean(raw)


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
