"""Parsing what staff type or scan: voucher codes and euro amounts (the one amount parser, used
by the desk, the sell form and the bulk upload).

Both raise Django's ValidationError with a message from vouchers.staff_text, so a form shows it
next to its field and a service can refuse the same input before any provider call.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

from .. import staff_text as messages
from .codes import CODE_LENGTH, normalize_code
from .formatting import strip_grouping

_CODE_CHARS = re.compile(r"^[A-Z0-9]+$")
# Digits, optionally one decimal separator (dot or comma) and its digits. ASCII digits only:
# ``\d`` would also accept Arabic-Indic and other digits.
_AMOUNT = re.compile(r"^(?P<sign>[+-])?(?P<int>[0-9]+)(?:[.,](?P<frac>[0-9]*))?$")


def parse_code(raw: str | None) -> str:
    """A normalised 16-character LINA code; spaces, dashes and case do not matter."""
    text = (raw or "").strip()
    if not text:
        raise ValidationError(messages.CODE_REQUIRED, code="required")
    if not text.isascii():
        raise ValidationError(messages.CODE_NOT_ASCII, code="characters")
    code = normalize_code(text)
    if not code:
        raise ValidationError(messages.CODE_REQUIRED, code="required")
    if not _CODE_CHARS.match(code):
        raise ValidationError(messages.CODE_NOT_ASCII, code="characters")
    if len(code) != CODE_LENGTH:
        raise ValidationError(messages.CODE_BAD_LENGTH, code="length", params={"length": len(code)})
    return code


def parse_amount(raw: str | None) -> Decimal:
    """A positive euro amount with at most 2 decimals; "12,50" and "12.50" both mean 12.50.

    Amounts as the pages show them, with thousands separators ("1.234,50", "1,234.50"), are
    accepted too.

    Exactly three digits after the separator ("12,345", "12.345") are refused as ambiguous:
    in German notation they are a thousands separator, in English a decimal point.
    """
    text = strip_grouping((raw or "").strip().replace("€", "").replace("\u00a0", "").strip())
    if not text:
        raise ValidationError(messages.AMOUNT_REQUIRED, code="required")
    match = _AMOUNT.match(text)
    if match is None:
        raise ValidationError(messages.AMOUNT_NOT_A_NUMBER, code="invalid", params={"value": text})
    frac = match["frac"] or ""
    if len(frac) == 3:
        raise ValidationError(messages.AMOUNT_AMBIGUOUS, code="ambiguous", params={"value": text})
    try:
        value = Decimal(f"{match['sign'] or ''}{match['int']}.{frac or '0'}")
    except InvalidOperation:
        raise ValidationError(messages.AMOUNT_NOT_A_NUMBER, code="invalid", params={"value": text}) from None
    if value <= 0:
        raise ValidationError(messages.AMOUNT_NOT_POSITIVE, code="not_positive")
    if len(frac.rstrip("0")) > 2:
        raise ValidationError(messages.AMOUNT_TOO_PRECISE, code="too_precise")
    if len(match["int"].lstrip("0")) > 9:
        # Far beyond any token; keeps the value inside the ledger's decimal column.
        raise ValidationError(messages.AMOUNT_NOT_A_NUMBER, code="invalid", params={"value": text})
    return value.quantize(Decimal("0.01"))
