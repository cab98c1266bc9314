"""Tolerant parsers for provider answers (providers.md, "What a client of either must handle").

Two layers:

* field parsers (``parse_decimal``, ``parse_date``, ``parse_flag``, ``parse_enum``,
  ``parse_count``) accept every spelling the providers are known to send and raise
  :class:`FieldError` (a plain ``ValueError``) on anything else;
* answer parsers (``lina_token_info``, ``lina_redeem_result``, ``lina_purchase_result``,
  ``allsafe_availability``, ``allsafe_voucher``) turn one decoded JSON body into a result
  dataclass. They only ever return a result or raise a documented :class:`ProviderError`
  (an unreadable answer becomes :class:`UnexpectedAnswer`); the property tests feed them arbitrary
  JSON to hold them to that.

Unknown extra fields are kept in ``raw``; optional fields may be missing.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ..values.codes import format_code, normalize_code
from .base import AllocatedVoucher, Availability, PurchaseResult, RedeemResult, StockItem, TokenInfo
from .errors import OutcomeUnknown, RedeemRefused, TokenInvalid, UnexpectedAnswer

# No voucher, balance or denomination comes near this; anything larger is a broken answer.
MAX_AMOUNT = Decimal("1000000000")
MAX_COUNT = 10**9


class FieldError(ValueError):
    """One field could not be read. Answer parsers turn it into UnexpectedAnswer."""


# --- Field parsers ---------------------------------------------------------------------------

_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def parse_decimal(value: Any) -> Decimal | None:
    """A money amount from a number or a string with dot or comma decimals.

    ``12.5``, ``"12.50"``, ``"12,50"``, ``"1.234,50"``, ``"1,234.50"`` and ``"€ 12,50"`` all
    work. With both separators present the last one is the decimal mark; a single kind of
    separator occurring more than once is a thousands separator. ``None`` and ``""`` mean "not
    sent" and give ``None``. Never returns a float, NaN or infinity.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise FieldError("a truth value is not an amount")
    if isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise FieldError("not a finite number")
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().replace("€", "").replace("EUR", "").replace("\u00a0", "").replace(" ", "")
        if text == "":
            return None
        text = _normalise_separators(text)
        if not _PLAIN_NUMBER.match(text):
            raise FieldError("not a number")
        try:
            result = Decimal(text)
        except InvalidOperation as exc:  # pragma: no cover - the pattern already rules this out
            raise FieldError("not a number") from exc
    else:
        raise FieldError(f"an amount cannot be a {type(value).__name__}")
    if not result.is_finite() or abs(result) >= MAX_AMOUNT:
        raise FieldError("amount out of range")
    return result


def _normalise_separators(text: str) -> str:
    has_dot, has_comma = "." in text, "," in text
    if has_dot and has_comma:
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
        thousands = "." if decimal_mark == "," else ","
        return text.replace(thousands, "").replace(decimal_mark, ".")
    if has_comma:
        return text.replace(",", "") if text.count(",") > 1 else text.replace(",", ".")
    if has_dot and text.count(".") > 1:
        return text.replace(".", "")
    return text


def parse_date(value: Any) -> date | None:
    """``dd.mm.yyyy`` (LINA) or ISO ``yyyy-mm-dd`` (Allsafe expiry, possibly with a time)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError("a date must be text")
    text = value.strip()
    if text == "":
        return None
    try:
        if re.fullmatch(r"\d{1,2}\.\d{1,2}\.\d{4}", text):
            day, month, year = (int(part) for part in text.split("."))
            return date(year, month, day)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ][0-9:.+\-Z]+", text):
            return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError as exc:
        raise FieldError("not a calendar date") from exc
    raise FieldError("unknown date format")


def parse_flag(value: Any) -> bool:
    """LINA ``tokencomplete``: ``0``/``1`` as number or string (also true/false). Missing is 0."""
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"0", "1", "true", "false"}:
        return value.strip().lower() in {"1", "true"}
    raise FieldError("not a 0/1 flag")


def parse_enum(value: Any) -> str:
    """An enum value compared case-insensitively: returned stripped and lower-cased ('' if absent)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError("an enum value must be text")
    return value.strip().lower()


def parse_count(value: Any) -> int:
    """A whole, non-negative number of vouchers from a number or a string ("25", 25.0)."""
    if isinstance(value, bool) or value is None:
        raise FieldError("not a count")
    if isinstance(value, int):
        result = value
    else:
        amount = parse_decimal(value)
        if amount is None or amount != amount.to_integral_value():
            raise FieldError("not a whole number")
        result = int(amount)
    if result < 0 or result > MAX_COUNT:
        raise FieldError("count out of range")
    return result


def parse_text(value: Any) -> str:
    """Text fields; numbers become text, anything structured is refused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        raise FieldError("not text")
    if isinstance(value, str | int | float):
        return str(value).strip()
    raise FieldError("not text")


def decode_json(body: bytes) -> Any:
    """Decode a JSON body; raises FieldError on anything else (HTML error pages, garbage)."""
    try:
        return json.loads(body.decode("utf-8-sig"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, too-long ints
        raise FieldError("not JSON") from exc


def _field(data: dict, name: str, parser, *, what: str):
    try:
        return parser(data.get(name))
    except FieldError as exc:
        raise UnexpectedAnswer(detail=f"{what}: field {name!r} unreadable ({exc})", raw=data) from None


def _require_object(data: Any, *, what: str) -> dict:
    if not isinstance(data, dict):
        raise UnexpectedAnswer(detail=f"{what}: expected a JSON object, got {type(data).__name__}", raw=None)
    return data


# --- LINA answers ----------------------------------------------------------------------------


def lina_token_info(data: Any, *, code: str) -> TokenInfo:
    """A ``checkcode`` answer whose ``status`` was OK (the envelope is checked in lina.py)."""
    data = _require_object(data, what="checkcode")
    validity = _field(data, "token", parse_enum, what="checkcode")
    if validity not in {"valid", "invalid"}:
        raise UnexpectedAnswer(detail="checkcode: 'token' is neither Valid nor Invalid", raw=data)
    display = _field(data, "tokencode", parse_text, what="checkcode")
    normalised = normalize_code(code)
    return TokenInfo(
        code=normalised,
        display_code=display or format_code(normalised),
        valid=validity == "valid",
        original_value=_field(data, "startwert", parse_decimal, what="checkcode"),
        remaining_value=_field(data, "restwert", parse_decimal, what="checkcode"),
        valid_until=_field(data, "tokengueltig", parse_date, what="checkcode"),
        full_value_only=_field(data, "tokencomplete", parse_flag, what="checkcode"),
        message=_field(data, "response", parse_text, what="checkcode"),
        raw=data,
    )


def lina_redeem_result(data: Any, *, code: str, amount: Decimal) -> RedeemResult:
    """A ``redeem`` answer whose ``status`` was OK. Success is ``resp: OK`` only (providers.md).

    ``resp: Err`` is a definite no (TokenInvalid when the token is Invalid, else RedeemRefused,
    with LINA's ``msg``). A ``status: OK`` answer without a readable ``resp`` means the provider
    took the request but we cannot tell what it did: OutcomeUnknown, to be reconciled.
    """
    if not isinstance(data, dict):
        raise OutcomeUnknown(detail="redeem: answer is not an object", raw=None)
    try:
        resp = parse_enum(data.get("resp"))
        validity = parse_enum(data.get("token"))
    except FieldError:
        resp, validity = "", ""
    if resp == "err":
        reason = _safe_text(data.get("msg")) or _safe_text(data.get("response"))
        error = TokenInvalid if validity == "invalid" else RedeemRefused
        raise error(reason or None, raw=data)
    if resp != "ok":
        raise OutcomeUnknown(detail="redeem: status OK but no readable 'resp'", raw=data)
    # The money moved; an unreadable balance must not hide that, so it becomes None.
    return RedeemResult(
        code=normalize_code(code),
        amount=amount,
        balance_before=lenient(parse_decimal, data.get("amount_old")),
        balance_after=lenient(parse_decimal, data.get("amount_new")),
        raw=data,
    )


def lina_purchase_result(data: Any, *, amount: Decimal) -> PurchaseResult:
    """A ``purchase`` answer whose ``status`` was OK. Without a code the sale's fate is unknown."""
    if not isinstance(data, dict):
        raise OutcomeUnknown(detail="purchase: answer is not an object", raw=None)
    new_code = normalize_code(lenient(parse_text, data.get("code")) or "")
    if not new_code:
        raise OutcomeUnknown(detail="purchase: status OK but no code", raw=data)
    sold_amount = lenient(parse_decimal, data.get("amount"))
    return PurchaseResult(
        code=new_code,
        amount=sold_amount if sold_amount is not None else amount,
        qrcode_png_base64=lenient(parse_text, data.get("qrcode")) or "",
        layout_url=lenient(parse_text, data.get("layouthttp")) or "",
        raw=data,
    )


def lenient(parser, value):
    try:
        return parser(value)
    except FieldError:
        return None


def _safe_text(value: Any) -> str:
    return value.strip()[:300] if isinstance(value, str) else ""


# --- Allsafe answers -------------------------------------------------------------------------

_LIST_KEYS = ("items", "data", "vouchers", "availability")
_VALUE_KEYS = ("value", "amount", "denomination")
_REMAINING_KEYS = ("remaining", "count", "available", "quantity")


def _first_present(item: dict, keys: tuple[str, ...]):
    lowered = {str(k).lower(): v for k, v in item.items()}
    for key in keys:
        if key in lowered and lowered[key] is not None:
            return lowered[key]
    return None


def allsafe_availability(data: Any) -> Availability:
    """``GET /availability``: a list, or a wrapper object holding it, of vendor/value/remaining."""
    rows = data
    if isinstance(data, dict):
        lowered = {str(k).lower(): v for k, v in data.items()}
        rows = next((lowered[k] for k in _LIST_KEYS if isinstance(lowered.get(k), list)), None)
        if rows is None:
            raise UnexpectedAnswer(detail="availability: object without a list of vouchers", raw=data)
    if not isinstance(rows, list):
        raise UnexpectedAnswer(detail="availability: expected a list", raw=data)
    items = []
    for position, row in enumerate(rows):
        if not isinstance(row, dict):
            raise UnexpectedAnswer(detail=f"availability: row {position} is not an object", raw=data)
        vendor = lenient(parse_text, _first_present(row, ("vendor",)))
        try:
            value = parse_decimal(_first_present(row, _VALUE_KEYS))
            remaining = parse_count(_first_present(row, _REMAINING_KEYS))
        except FieldError as exc:
            raise UnexpectedAnswer(
                detail=f"availability: row {position} unreadable ({exc})", raw=data
            ) from None
        if not vendor or value is None:
            raise UnexpectedAnswer(detail=f"availability: row {position} lacks vendor or value", raw=data)
        items.append(StockItem(vendor=vendor, value=value, remaining=remaining, raw=row))
    return Availability(items=tuple(items), raw=data)


def allsafe_voucher(data: Any, *, requested_vendor: str, requested_value: Decimal) -> AllocatedVoucher:
    """An allocate answer (HTTP 200). The voucher was handed out: without a pin/code the caller
    cannot tell which one, so an unreadable body is OutcomeUnknown, never "nothing happened"."""
    if not isinstance(data, dict):
        raise OutcomeUnknown(detail="allocate: 200 without a voucher object", raw=None)
    code = lenient(parse_text, _first_present(data, ("pin", "code", "voucher", "voucher_code")))
    if not code:
        raise OutcomeUnknown(detail="allocate: 200 without a pin or code", raw=data)
    value = lenient(parse_decimal, _first_present(data, _VALUE_KEYS))
    return AllocatedVoucher(
        vendor=lenient(parse_text, data.get("vendor")) or requested_vendor,
        value=value if value is not None else requested_value,
        code=code,
        serial=lenient(parse_text, _first_present(data, ("serial", "serial_number", "serialno"))) or "",
        expiry=lenient(parse_date, _first_present(data, ("expiry", "expires", "expiry_date", "valid_until"))),
        fields=dict(data),
        raw=data,
    )
