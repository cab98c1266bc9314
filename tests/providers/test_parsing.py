"""Tolerant parsers: known spellings, and property tests that nothing else ever escapes.

The properties: for ANY JSON value (and any bytes body, HTML included) a parser returns its
result type or raises a documented error (FieldError for field parsers, ProviderError for answer
parsers and whole clients), never anything else.
"""

from __future__ import annotations

import contextlib
import json
from datetime import date
from decimal import Decimal

import pytest
import responses
from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vouchers.providers import parsing
from vouchers.providers.allsafe import AllsafeClient
from vouchers.providers.base import (
    AllocatedVoucher,
    AllocateRequest,
    Availability,
    PurchaseResult,
    RedeemResult,
    TokenInfo,
)
from vouchers.providers.errors import ProviderError
from vouchers.providers.lina import LinaClient

from .conftest import ALLSAFE_BASE, LINA_BASE, PUBLIC_IP, allsafe_config, lina_config

PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        ["OK", "ok", "Valid", "INVALID", "Err", "1", "0", "12,50", "1.234,50", "31.12.2027", "DENIED"]
    ),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=15,
)
lina_keys = st.sampled_from(
    [
        "status",
        "response",
        "token",
        "tokencode",
        "startwert",
        "restwert",
        "tokengueltig",
        "tokencomplete",
        "resp",
        "msg",
        "amount_old",
        "amount_new",
        "code",
        "amount",
        "qrcode",
        "layouthttp",
        "myip",
        "hash",
    ]
)
lina_like = st.dictionaries(lina_keys, json_values, max_size=10)
allsafe_row = st.dictionaries(
    st.sampled_from(
        ["vendor", "value", "amount", "denomination", "remaining", "count", "available", "quantity", "x"]
    ),
    json_values,
    max_size=6,
)
allsafe_like = st.one_of(
    st.lists(allsafe_row, max_size=4),
    st.dictionaries(
        st.sampled_from(["items", "data", "vouchers", "availability", "detail"]),
        st.lists(allsafe_row, max_size=3),
        max_size=2,
    ),
    json_values,
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.just(b"<!doctype html><html><body>502 Bad Gateway</body></html>"),
    lina_like.map(lambda d: json.dumps(d).encode()),
    allsafe_like.map(lambda d: json.dumps(d).encode()),
)


# --- Field parsers: known spellings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (12, Decimal("12")),
        (12.5, Decimal("12.5")),
        ("12.50", Decimal("12.50")),
        ("12,50", Decimal("12.50")),
        ("1.234,50", Decimal("1234.50")),
        ("1,234.50", Decimal("1234.50")),
        ("1.234.567", Decimal("1234567")),
        (" € 7,00 ", Decimal("7.00")),
        ("-3,5", Decimal("-3.5")),
        ("", None),
        (None, None),
    ],
)
def test_parse_decimal(raw, expected):
    assert parsing.parse_decimal(raw) == expected


@pytest.mark.parametrize(
    "raw", ["abc", "1e5", "NaN", float("nan"), float("inf"), True, [], {}, "1,2,3.4.5", "10" * 10]
)
def test_parse_decimal_refuses(raw):
    with pytest.raises(parsing.FieldError):
        parsing.parse_decimal(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("31.12.2027", date(2027, 12, 31)),
        ("1.2.2026", date(2026, 2, 1)),
        ("2027-12-31", date(2027, 12, 31)),
        ("2027-12-31T10:00:00Z", date(2027, 12, 31)),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(raw, expected):
    assert parsing.parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["31.02.2027", "12/31/2027", "tomorrow", 20271231])
def test_parse_date_refuses(raw):
    with pytest.raises(parsing.FieldError):
        parsing.parse_date(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(0, False), (1, True), ("0", False), ("1", True), (" 1 ", True), (None, False), (True, True)],
)
def test_parse_flag(raw, expected):
    assert parsing.parse_flag(raw) is expected


@pytest.mark.parametrize("raw", [2, "yes", "01x", [1]])
def test_parse_flag_refuses(raw):
    with pytest.raises(parsing.FieldError):
        parsing.parse_flag(raw)


def test_enums_are_compared_case_insensitively():
    assert parsing.parse_enum(" Valid ") == parsing.parse_enum("VALID") == "valid"
    assert parsing.parse_enum(None) == ""


def test_missing_optional_lina_fields_are_tolerated():
    info = parsing.lina_token_info({"status": "OK", "token": "Valid"}, code="abcd-efgh")
    assert info.valid and info.original_value is None and info.full_value_only is False
    assert info.display_code == "ABCD-EFGH"


# --- Properties: field parsers --------------------------------------------------------------------


@PROPERTY
@given(json_values)
def test_field_parsers_return_their_type_or_field_error(value):
    for parser, types in [
        (parsing.parse_decimal, (Decimal, type(None))),
        (parsing.parse_date, (date, type(None))),
        (parsing.parse_flag, (bool,)),
        (parsing.parse_enum, (str,)),
        (parsing.parse_count, (int,)),
        (parsing.parse_text, (str,)),
    ]:
        try:
            result = parser(value)
        except parsing.FieldError:
            continue
        assert isinstance(result, types), (parser.__name__, value, result)
        if isinstance(result, Decimal):
            assert result.is_finite()


@PROPERTY
@given(st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**6), max_value=10**6))
def test_amounts_round_trip_in_both_notations(amount):
    dotted = f"{amount:.2f}"
    assert parsing.parse_decimal(dotted) == amount
    assert parsing.parse_decimal(dotted.replace(".", ",")) == amount


# --- Properties: answer parsers -------------------------------------------------------------------


@PROPERTY
@given(lina_like | json_values)
def test_lina_answer_parsers_return_results_or_documented_errors(data):
    for parse, result_type in [
        (lambda: parsing.lina_token_info(data, code="ABCD1234EFGH5678"), TokenInfo),
        (
            lambda: parsing.lina_redeem_result(data, code="ABCD1234EFGH5678", amount=Decimal("1")),
            RedeemResult,
        ),
        (lambda: parsing.lina_purchase_result(data, amount=Decimal("1")), PurchaseResult),
    ]:
        try:
            assert isinstance(parse(), result_type)
        except ProviderError as error:
            assert error.message


@PROPERTY
@given(allsafe_like)
def test_allsafe_answer_parsers_return_results_or_documented_errors(data):
    try:
        result = parsing.allsafe_availability(data)
        assert isinstance(result, Availability)
        assert all(item.remaining >= 0 and item.vendor for item in result.items)
    except ProviderError:
        pass
    with contextlib.suppress(ProviderError):
        assert isinstance(
            parsing.allsafe_voucher(data, requested_vendor="V", requested_value=Decimal(5)), AllocatedVoucher
        )


@PROPERTY
@given(bodies)
def test_decode_json_returns_json_or_field_error(body):
    try:
        value = parsing.decode_json(body)
    except parsing.FieldError:
        return
    assert isinstance(value, dict | list | str | int | float | bool | type(None))
    json.dumps(value)  # plain JSON data, nothing exotic


# --- Properties: whole clients over arbitrary HTTP answers ----------------------------------------

statuses = st.sampled_from([200, 200, 200, 204, 400, 401, 403, 404, 491, 492, 495, 496, 500, 502])


@PROPERTY
@given(body=bodies, status=statuses)
def test_lina_client_ends_every_answer_as_a_result_or_documented_error(body, status):
    cache.clear()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(f"{LINA_BASE}/ping", json={"status": "OK", "myip": PUBLIC_IP})
        mock.post(f"{LINA_BASE}/login", json={"status": "OK", "hash": "h" * 32})
        for operation in ("checkcode", "redeem"):
            mock.post(f"{LINA_BASE}/{operation}", status=status, body=body)
        client = LinaClient(lina_config())
        for call in (
            lambda: client.check("ABCD1234EFGH5678"),
            lambda: client.redeem("ABCD1234EFGH5678", Decimal("5")),
        ):
            try:
                call()
            except ProviderError as error:
                assert error.message


@PROPERTY
@given(body=bodies, status=statuses)
def test_allsafe_client_ends_every_answer_as_a_result_or_documented_error(body, status):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{ALLSAFE_BASE}/availability", status=status, body=body)
        mock.post(f"{ALLSAFE_BASE}/allocate", status=status, body=body)
        client = AllsafeClient(allsafe_config())
        for call in (client.availability, lambda: client.allocate(AllocateRequest("V", Decimal("5"), "r"))):
            try:
                call()
            except ProviderError as error:
                assert error.message
