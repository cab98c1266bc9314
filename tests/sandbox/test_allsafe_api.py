"""Allsafe over live HTTP: Basic auth, availability, allocate, and the situations behind each code."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import requests

DEMO_AUTH = ("demo-allsafe", "demo-allsafe-password")


def availability(sandbox, auth=DEMO_AUTH):
    return requests.get(f"{sandbox.allsafe_url}/availability", auth=auth, timeout=5)


def allocate(sandbox, payload=None, *, auth=DEMO_AUTH, path="/allocate", **kwargs):
    return requests.post(f"{sandbox.allsafe_url}{path}", json=payload, auth=auth, timeout=5, **kwargs)


def _count(sandbox, vendor, value):
    return sum(
        r["count"] for r in sandbox.stock("demo-allsafe") if (r["vendor"], r["value"]) == (vendor, value)
    )


def test_availability_lists_every_voucher_type_of_the_linked_vaults(sandbox):
    response = availability(sandbox)
    assert response.status_code == 200
    items = {(i["vendor"], i["value"]): i["remaining"] for i in response.json()}
    assert items[("Takealot", 100)] == 30  # 25 in the main vault + 5 in the promo vault
    assert items[("Takealot", 250)] == 6  # low
    assert items[("Checkers", 100)] == 0  # empty
    assert items[("Checkers", 50)] == 40  # healthy
    assert {"vendor", "value", "remaining"} == set(response.json()[0])


def test_availability_is_204_without_a_body_when_nothing_is_listed(sandbox):
    sandbox.set_allsafe_campaign("empty", password="pw", vaults=["Empty vault"])
    response = availability(sandbox, ("empty", "pw"))
    assert (response.status_code, response.content) == (204, b"")


@pytest.mark.parametrize(
    "auth",
    [
        None,
        ("demo-allsafe", "wrong"),
        ("nobody", "demo-allsafe-password"),
        ("revoked-allsafe", "revoked-allsafe-password"),
        ("pending-allsafe", "pending-allsafe-password"),
    ],
)
def test_401_for_wrong_credentials_revoked_integration_or_campaign_not_live(sandbox, auth):
    for response in (
        availability(sandbox, auth),
        allocate(sandbox, {"vendor": "Takealot", "value": 100, "reference": "r"}, auth=auth),
    ):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert _count(sandbox, "Takealot", 100) == 30


@pytest.mark.parametrize(("starts", "ends"), [(None, -1), (1, None)])
def test_401_outside_the_campaign_dates(sandbox, starts, ends):
    today = date.today()
    sandbox.set_allsafe_campaign(
        "demo-allsafe",
        starts_on=(today + timedelta(days=starts)).isoformat() if starts else None,
        ends_on=(today + timedelta(days=ends)).isoformat() if ends else None,
    )
    assert availability(sandbox).status_code == 401
    sandbox.set_allsafe_campaign("demo-allsafe", starts_on=None, ends_on=None)
    assert availability(sandbox).status_code == 200


def test_401_for_a_malformed_authorization_header(sandbox):
    response = requests.get(
        f"{sandbox.allsafe_url}/availability", headers={"Authorization": "Basic !!!"}, timeout=5
    )
    assert response.status_code == 401


def test_491_when_no_vault_is_linked(sandbox):
    auth = ("novault-allsafe", "novault-allsafe-password")
    assert availability(sandbox, auth).status_code == 491
    assert (
        allocate(sandbox, {"vendor": "Takealot", "value": 100, "reference": "r"}, auth=auth).status_code
        == 491
    )


def test_allocate_hands_out_one_voucher_and_consumes_it(sandbox):
    response = allocate(sandbox, {"vendor": "Takealot", "value": 250, "reference": "portal-42"})
    assert response.status_code == 200
    voucher = response.json()
    assert (voucher["vendor"], voucher["value"], voucher["reference"]) == ("Takealot", 250, "portal-42")
    assert voucher["pin"] and voucher["serial"]
    assert date.fromisoformat(voucher["expiry"]) > date.today()
    assert _count(sandbox, "Takealot", 250) == 5
    second = allocate(sandbox, {"vendor": "takealot", "value": "250", "reference": "portal-43"}).json()
    assert second["pin"] != voucher["pin"] and second["vendor"] == "Takealot"
    entries = sandbox.journal("allsafe", "allocate")
    assert [e["reference"] for e in entries] == ["portal-42", "portal-43"]
    assert all(e["applied"] and e["result"] == 200 and e["value"] == 250 for e in entries)
    assert voucher["pin"] not in str(entries)


def test_allocate_drains_a_low_stock_type_to_492(sandbox):
    for n in range(3):
        assert (
            allocate(sandbox, {"vendor": "Netflorist", "value": 200, "reference": f"r{n}"}).status_code == 200
        )
    response = allocate(sandbox, {"vendor": "Netflorist", "value": 200, "reference": "r4"})
    assert response.status_code == 492
    assert availability(sandbox).json()[2] == {"vendor": "Netflorist", "value": 200, "remaining": 0}
    assert sandbox.journal("allsafe", "allocate", applied=False)[0]["result"] == 492


@pytest.mark.parametrize(("vendor", "value"), [("Checkers", 100), ("Takealot", 75), ("Woolworths", 100)])
def test_492_for_an_empty_type_or_a_vendor_without_that_value(sandbox, vendor, value):
    assert allocate(sandbox, {"vendor": vendor, "value": value, "reference": "r"}).status_code == 492


def test_496_for_an_unknown_vendor(sandbox):
    response = allocate(sandbox, {"vendor": "Amazon", "value": 100, "reference": "r"})
    assert response.status_code == 496
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"value": 100, "reference": "r"}',
        b'{"vendor": "", "value": 100, "reference": "r"}',
        b'{"vendor": "Takealot", "reference": "r"}',
        b'{"vendor": "Takealot", "value": "lots", "reference": "r"}',
        b'{"vendor": "Takealot", "value": -100, "reference": "r"}',
        b'{"vendor": "Takealot", "value": true, "reference": "r"}',
        b'{"vendor": "Takealot", "value": 100}',
        b'{"vendor": "Amazon", "value": 100}',
    ],
)
def test_495_for_a_malformed_request(sandbox, body):
    response = requests.post(
        f"{sandbox.allsafe_url}/allocate",
        data=body,
        auth=DEMO_AUTH,
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 495
    assert _count(sandbox, "Takealot", 100) == 30


def test_allocate_path_and_field_names_are_switchable_per_campaign(sandbox):
    sandbox.set_allsafe_campaign(
        "demo-allsafe",
        allocate_path="/vouchers/allocate",
        vendor_field="brand",
        value_field="amount",
        reference_field="externalRef",
    )
    ok = allocate(
        sandbox, {"brand": "Checkers", "amount": 50, "externalRef": "x1"}, path="/vouchers/allocate"
    )
    assert ok.status_code == 200 and ok.json()["reference"] == "x1"
    assert allocate(sandbox, {"vendor": "Checkers", "value": 50, "reference": "x2"}).status_code == 404
    old_names = allocate(
        sandbox, {"vendor": "Checkers", "value": 50, "reference": "x3"}, path="/vouchers/allocate"
    )
    assert old_names.status_code == 495


def test_availability_styles_the_client_parser_must_accept(sandbox):
    sandbox.set_allsafe_campaign("demo-allsafe", availability_style="wrapped")
    assert availability(sandbox).json()["items"][0] == {"vendor": "Checkers", "value": 50, "remaining": 40}
    sandbox.set_allsafe_campaign("demo-allsafe", availability_style="synonyms")
    first = availability(sandbox).json()["data"][0]
    assert (first["vendor"], first["denomination"], first["count"]) == ("Checkers", "50", "40")


def test_stock_can_be_set_from_tests(sandbox):
    sandbox.set_stock("Takealot", 100, 2, vault="Promo vault")
    sandbox.set_stock("Amazon", 500, 1)  # a new vendor becomes known
    items = {(i["vendor"], i["value"]): i["remaining"] for i in availability(sandbox).json()}
    assert items[("Takealot", 100)] == 27 and items[("Amazon", 500)] == 1
    assert allocate(sandbox, {"vendor": "Amazon", "value": 500, "reference": "a"}).status_code == 200


def test_unknown_allsafe_paths_are_404_after_auth(sandbox):
    assert requests.get(f"{sandbox.allsafe_url}/docs", auth=DEMO_AUTH, timeout=5).status_code == 404
