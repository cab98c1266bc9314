"""How the providers write money, dates and codes on the wire (providers.md, "Token facts")."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CENT = Decimal("0.01")
_SEPARATORS = re.compile(r"[\s\-_.]+")
_PLAIN_AMOUNT = re.compile(r"^\d{1,9}(\.\d{1,2})?$")

try:
    BERLIN = ZoneInfo("Europe/Berlin")
except ZoneInfoNotFoundError:  # a minimal container without tzdata: close enough for a simulator
    BERLIN = None


def berlin_today() -> date:
    """LINA tokens are valid through the end of their day in Europe/Berlin."""
    return datetime.now(BERLIN).date() if BERLIN else date.today()


def normalize_code(raw: str) -> str:
    return _SEPARATORS.sub("", raw or "").upper()


def display_code(code: str) -> str:
    """ABCD-EFGH-IJKL-MNOP, the form LINA sends back in ``tokencode``."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def mask_code(code: str) -> str:
    """Same convention as the portal (vouchers.values.codes.mask_code): only the last four stay visible."""
    return "••••" + code[-4:] if len(code) > 4 else "•" * len(code)


def parse_wire_amount(raw: str) -> Decimal:
    """An amount as the LINA contract sends it: dot decimal, at most two decimals, above zero.

    Raises ValueError for anything else (comma decimals, thousands separators, signs, words).
    """
    text = (raw or "").strip()
    if not _PLAIN_AMOUNT.match(text):
        raise ValueError(f"not an amount: {raw!r}")
    value = Decimal(text)
    if value <= 0:
        raise ValueError("amount must be above zero")
    return value.quantize(CENT)


def parse_decimal(raw) -> Decimal:
    """Lenient parsing for the control API: numbers or strings with a dot or a comma decimal."""
    if isinstance(raw, bool):
        raise ValueError("a boolean is not an amount")
    text = str(raw).strip().replace(",", ".")
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {raw!r}") from exc


def euro(value: Decimal) -> str:
    """German notation as LINA writes startwert/restwert: ``1.234,50``."""
    text = f"{value.quantize(CENT):,.2f}"  # 1,234.50
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def dot_amount(value: Decimal) -> str:
    return f"{value.quantize(CENT):.2f}"


def german_date(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def json_number(value: Decimal) -> int | float:
    """Allsafe denominations are whole rand; keep them integers in JSON when they are."""
    return int(value) if value == value.to_integral_value() else float(value)
