"""Voucher codes: normalising, formatting, masking and a keyed digest.

LINA codes are 16 characters, typed or scanned; the provider sends them back formatted with
separators, so every code is normalised (spaces and dashes stripped, upper-cased) before use
(providers.md, "Token facts"). Full codes never go to logs or the ledger: the ledger keeps the
masked form for people and a keyed digest to find operations on the same code.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from django.conf import settings

CODE_LENGTH = 16
_SEPARATORS = re.compile(r"[\s\-_.]+")
_ALLOWED = re.compile(r"^[A-Z0-9]+$")


def normalize_code(raw: str) -> str:
    """Strip separators and upper-case; does not validate."""
    return _SEPARATORS.sub("", raw or "").upper()


def is_plausible_code(code: str) -> bool:
    """A normalised code of letters and digits of a sane length."""
    return bool(code) and len(code) <= 64 and bool(_ALLOWED.match(code))


def format_code(code: str, group: int = 4) -> str:
    """ABCD-EFGH-IJKL-MNOP for display to roles that may see the full code."""
    code = normalize_code(code)
    return "-".join(code[i : i + group] for i in range(0, len(code), group))


def mask_code(code: str) -> str:
    """Only the last four characters stay visible: enough to tell codes apart at the till."""
    code = normalize_code(code)
    if len(code) <= 4:
        return "•" * len(code)
    return "••••" + code[-4:]


def code_digest(code: str) -> str:
    """A keyed SHA-256 of the normalised code: equal codes give equal digests, nobody can invert it."""
    key = hashlib.sha256(("voucher-code-digest:" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, normalize_code(code).encode(), hashlib.sha256).hexdigest()
