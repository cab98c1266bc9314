"""Allsafe client: request shape, the tolerant availability parser, and every status-table row."""

from __future__ import annotations

import base64
import json
from datetime import date
from decimal import Decimal

import pytest
import responses

from vouchers.providers.allsafe import STATUS_ERRORS, AllsafeClient
from vouchers.providers.base import AllocateRequest
from vouchers.providers.errors import (
    AuthFailed,
    InvalidVendor,
    Misconfigured,
    OutcomeUnknown,
    OutOfStock,
    ProviderUnavailable,
    UnexpectedAnswer,
    ValidationFailed,
)

from .conftest import ALLSAFE_BASE, PASSWORD, USERNAME, allsafe_config

BASE = ALLSAFE_BASE
BASIC = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
REQUEST = AllocateRequest(vendor="Takealot", value=Decimal("100"), reference="op-42")


@pytest.fixture
def client() -> AllsafeClient:
    return AllsafeClient(allsafe_config())


# --- Request shape ---------------------------------------------------------------------------------


def test_availability_is_a_get_with_basic_auth(mocked, client):
    mocked.get(f"{BASE}/availability", json=[{"vendor": "Takealot", "value": 100, "remaining": 25}])
    result = client.availability()
    call = mocked.calls[0]
    assert call.request.method == "GET" and call.request.url == f"{BASE}/availability"
    assert call.request.headers["Authorization"] == BASIC
    assert call.request.body is None
    assert [(i.vendor, i.value, i.remaining) for i in result.items] == [("Takealot", Decimal("100"), 25)]


def test_allocate_posts_json_with_the_configured_path_and_field_names(mocked, sensitive):
    client = AllsafeClient(
        allsafe_config(
            allsafe_allocate_path="/v2/vouchers/allocate",
            allsafe_vendor_field="brand",
            allsafe_value_field="denomination",
            allsafe_reference_field="clientRef",
        )
    )
    sensitive.append("PIN-0001-XYZ")
    mocked.post(
        f"{BASE}/v2/vouchers/allocate",
        json={
            "pin": "PIN-0001-XYZ",
            "serial": "S1",
            "vendor": "Takealot",
            "value": 100,
            "expiry": "2027-12-31",
            "barcode": "x",
        },
    )
    voucher = client.allocate(REQUEST)
    call = mocked.calls[0]
    assert call.request.method == "POST"
    assert call.request.headers["Content-Type"] == "application/json"
    assert call.request.headers["Authorization"] == BASIC
    assert json.loads(call.request.body) == {"brand": "Takealot", "denomination": 100, "clientRef": "op-42"}
    assert voucher.code == "PIN-0001-XYZ" and voucher.serial == "S1"
    assert voucher.value == Decimal("100") and voucher.expiry == date(2027, 12, 31)
    assert voucher.fields["barcode"] == "x"  # every field received is kept for display


def test_allocate_sends_a_fractional_value_as_a_json_number(mocked, sensitive, client):
    sensitive.append("CODE-77-ABC")
    mocked.post(f"{BASE}/allocate", json={"code": "CODE-77-ABC"})
    voucher = client.allocate(AllocateRequest("Takealot", Decimal("12.50"), "op-1"))
    assert json.loads(mocked.calls[0].request.body)["value"] == 12.5
    assert voucher.code == "CODE-77-ABC"  # "code" instead of "pin"
    assert voucher.vendor == "Takealot" and voucher.value == Decimal("12.50")  # missing: the request's


# --- Availability parser -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        [{"vendor": "Takealot", "value": 100, "remaining": 25}],
        {"items": [{"vendor": "Takealot", "value": 100, "remaining": 25}]},
        {"data": [{"vendor": "Takealot", "amount": "100", "count": "25"}]},
        {"vouchers": [{"vendor": "Takealot", "denomination": "100,00", "available": 25}]},
        {"availability": [{"Vendor": "Takealot", "Value": 100.0, "quantity": 25.0, "brand": "TKL"}]},
    ],
)
def test_availability_accepts_every_known_shape(mocked, client, body):
    mocked.get(f"{BASE}/availability", json=body)
    result = client.availability()
    assert [(i.vendor, i.value, i.remaining) for i in result.items] == [("Takealot", Decimal("100"), 25)]
    assert result.raw == body


def test_availability_keeps_extra_keys(mocked, client):
    mocked.get(f"{BASE}/availability", json=[{"vendor": "A", "value": 5, "remaining": 1, "brand": "B"}])
    assert client.availability().items[0].raw["brand"] == "B"


def test_204_means_nothing_to_list(mocked, client):
    mocked.get(f"{BASE}/availability", status=204)
    result = client.availability()
    assert result.items == () and result.nothing_left is True


@pytest.mark.parametrize("body", [b'[{"vendor": "A", "value": 5, "remaining": 3}]', b"<html>proxy</html>"])
def test_a_204_with_a_body_is_still_nothing_to_list(body):
    """HTTP says a 204 has no body; a server that sends one anyway (over a real socket, as a
    broken proxy would) still means "success, nothing to list"."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            head = f"HTTP/1.1 204 No Content\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            conn.sendall(head.encode() + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        client = AllsafeClient(allsafe_config(base_url=f"http://127.0.0.1:{port}"))
        result = client.availability()
    finally:
        thread.join(5)
        listener.close()
    assert result.items == () and result.nothing_left is True


def test_a_200_with_an_empty_list_is_not_the_documented_nothing_left(mocked, client):
    mocked.get(f"{BASE}/availability", json=[])
    assert client.availability().nothing_left is False


@pytest.mark.parametrize(
    "body",
    [
        {"detail": "ok"},
        [{"vendor": "A", "value": "lots", "remaining": 1}],
        [{"vendor": "A", "value": 5, "remaining": -1}],
        [{"vendor": "A", "value": 5, "remaining": 1.5}],
        [{"value": 5, "remaining": 1}],
        ["A", 5, 1],
        "text",
    ],
)
def test_unreadable_availability_is_unexpected_answer(mocked, client, body):
    mocked.get(f"{BASE}/availability", json=body)
    with pytest.raises(UnexpectedAnswer):
        client.availability()


# --- Every row of providers.md's status table, by number ----------------------------------------

TABLE = [
    (
        401,
        AuthFailed,
        [
            "The API user name and password of the campaign, as issued in the Allsafe management portal.",
            "Whether the campaign's integration was revoked: check the integration status in the Allsafe management portal.",
            "Whether the campaign is still Live in Allsafe: check its status and its start and end dates.",
        ],
    ),
    (491, Misconfigured, ["Link a vault to the campaign in the Allsafe management portal."]),
    (
        492,
        OutOfStock,
        [
            "Whether the vaults linked to the campaign still hold vouchers.",
            "Whether this vendor has vouchers of the requested value (a vendor/value mismatch).",
        ],
    ),
    (
        495,
        ValidationFailed,
        [
            "The request was malformed: a bug or a bad setting. Check the campaign's allocate path and field names."
        ],
    ),
    (496, InvalidVendor, ["The vendor name: it must be spelled exactly as Allsafe knows it."]),
]
UNAVAILABLE_STATUSES = [500, 502, 503, 504, 404, 418, 302, 400, 403, 429, 490, 493, 494, 497]


def test_the_table_in_code_is_the_table_in_providers_md():
    assert sorted(STATUS_ERRORS) == [row[0] for row in TABLE]


@pytest.mark.parametrize("operation", ["availability", "allocate"])
@pytest.mark.parametrize(("status", "error", "checks"), TABLE, ids=[str(row[0]) for row in TABLE])
@pytest.mark.parametrize(
    "body",
    ['{"detail": "whatever the provider says"}', "<html>not json</html>", ""],
    ids=["json", "html", "empty"],
)
def test_each_status_maps_by_number(mocked, client, operation, status, error, checks, body):
    method = mocked.get if operation == "availability" else mocked.post
    path = "availability" if operation == "availability" else "allocate"
    method(f"{BASE}/{path}", status=status, body=body)
    with pytest.raises(error) as caught:
        client.availability() if operation == "availability" else client.allocate(REQUEST)
    assert type(caught.value) is error
    assert caught.value.status_code == status
    assert f"(HTTP {status})" in caught.value.message
    assert caught.value.what_to_check == checks
    assert "whatever" not in caught.value.message  # the body is never relied on nor shown
    assert len(mocked.calls) == 1  # a definite answer is never retried


@pytest.mark.parametrize("status", UNAVAILABLE_STATUSES)
def test_any_other_status_is_unavailable_and_reads_are_retried(mocked, client, status):
    mocked.get(f"{BASE}/availability", status=status, body="<html>oops</html>", content_type="text/html")
    with pytest.raises(ProviderUnavailable) as caught:
        client.availability()
    assert type(caught.value) is ProviderUnavailable and caught.value.status_code == status
    assert caught.value.what_to_check
    assert len(mocked.calls) == (3 if status >= 500 else 1)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 302])
@pytest.mark.parametrize(
    ("body", "content_type"),
    [('{"detail": "error"}', "application/json"), ("<html>oops</html>", "text/html"), ("", "text/html")],
    ids=["json", "html", "empty"],
)
def test_a_server_error_or_redirect_on_allocate_is_outcome_unknown_and_never_retried(
    mocked, client, status, body, content_type
):
    """A proxy's 502/504 may come after Allsafe was reached, a 500 after it allocated: the
    outcome is unknown whatever the body, to be reviewed, never resent."""
    mocked.post(f"{BASE}/allocate", status=status, body=body, content_type=content_type)
    with pytest.raises(OutcomeUnknown) as caught:
        client.allocate(REQUEST)
    assert caught.value.status_code == status and "oops" not in caught.value.message
    assert len(mocked.calls) == 1


@pytest.mark.parametrize("status", [s for s in UNAVAILABLE_STATUSES if 400 <= s < 500])
def test_another_4xx_on_allocate_is_unavailable_with_json_and_unknown_with_html(mocked, client, status):
    """A readable 4xx is a refusal (nothing allocated); an HTML page could be anyone's."""
    mocked.post(f"{BASE}/allocate", status=status, json={"detail": "refused"})
    with pytest.raises(ProviderUnavailable) as caught:
        client.allocate(REQUEST)
    assert type(caught.value) is ProviderUnavailable and caught.value.status_code == status
    mocked.replace(responses.POST, f"{BASE}/allocate", status=status, body="<html>oops</html>")
    with pytest.raises(OutcomeUnknown):
        client.allocate(REQUEST)
    assert len(mocked.calls) == 2


def test_availability_200_that_is_not_json_is_unavailable(mocked, client):
    mocked.get(f"{BASE}/availability", body="<html>maintenance</html>", content_type="text/html")
    with pytest.raises(UnexpectedAnswer) as caught:
        client.availability()
    assert "maintenance" not in caught.value.message


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, "<html>done</html>"), (200, "[]"), (200, '{"serial": "S1"}'), (201, '{"pin": "P"}'), (204, "")],
)
def test_allocate_success_status_without_a_readable_voucher_is_outcome_unknown(mocked, client, status, body):
    """2xx says a voucher was handed out; without it the outcome must be reviewed, never resent."""
    mocked.post(f"{BASE}/allocate", status=status, body=body)
    with pytest.raises(OutcomeUnknown):
        client.allocate(REQUEST)
    assert len(mocked.calls) == 1


@pytest.mark.parametrize("missing", ["username", "password"])
def test_missing_credentials_are_misconfigured_without_a_call(mocked, missing):
    client = AllsafeClient(allsafe_config(**{missing: ""}))
    with pytest.raises(Misconfigured):
        client.availability()
    assert len(mocked.calls) == 0
