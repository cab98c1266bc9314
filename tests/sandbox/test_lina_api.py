"""LINA token API over live HTTP: every call, its fields and status codes (WIRE.md)."""

from __future__ import annotations

import base64
import io
from datetime import date, timedelta

import pytest
import requests
import segno

from ..support.sandbox import SandboxError
from .lina_client import DEMO, call, login, recipe_hash

RECIPES = ["md5(md5(password)+ip+key)", "md5(password+ip+key)", "md5(ip+md5(password)+key)"]


def test_ping_reports_the_client_ip_the_server_sees(sandbox):
    response = call(sandbox, "ping")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"status": "OK", "myip": "127.0.0.1"}


def test_the_legacy_path_without_the_lina_prefix_answers_too(sandbox):
    response = requests.post(f"{sandbox.url}/extern/tokenapi/ping", timeout=5)
    assert response.json()["status"] == "OK"


@pytest.mark.parametrize("recipe", RECIPES)
def test_login_verifies_the_hash_with_the_accounts_recipe(sandbox, recipe):
    sandbox.set_lina_account("demo-shop", recipe=recipe)
    session = login(sandbox, recipe=recipe)
    assert len(session) >= 16
    other = next(r for r in RECIPES if r != recipe)
    ip = call(sandbox, "ping").json()["myip"]
    refused = call(
        sandbox, "login", user="demo-shop", **{"pass": recipe_hash(other, *DEMO[1:2], ip, DEMO[2])}
    )
    assert refused.status_code == 400
    assert refused.json() == {"status": "error", "response": "Login fehlgeschlagen"}


def test_login_accepts_upper_case_hex_and_issues_a_new_hash_per_login(sandbox):
    ip = call(sandbox, "ping").json()["myip"]
    upper = recipe_hash(RECIPES[0], DEMO[1], ip, DEMO[2]).upper()
    first = call(sandbox, "login", user="demo-shop", **{"pass": upper}).json()["hash"]
    assert first != login(sandbox)


def test_login_refuses_unknown_users_and_wrong_passwords(sandbox):
    ip = "127.0.0.1"
    for user, password in (("nobody", DEMO[1]), ("demo-shop", "wrong")):
        response = call(
            sandbox, "login", user=user, **{"pass": recipe_hash(RECIPES[0], password, ip, DEMO[2])}
        )
        assert response.status_code == 400
        assert response.json()["response"] == "Login fehlgeschlagen"
    assert call(sandbox, "login").status_code == 400


def test_login_field_names_are_switchable_per_account(sandbox):
    sandbox.set_lina_account("demo-shop", user_field="username", pass_field="passhash")
    assert login(sandbox, user_field="username", pass_field="passhash")
    ip = call(sandbox, "ping").json()["myip"]
    old_names = call(
        sandbox, "login", user="demo-shop", **{"pass": recipe_hash(RECIPES[0], DEMO[1], ip, DEMO[2])}
    )
    assert old_names.status_code == 400


def test_each_account_has_its_own_credentials(sandbox):
    assert login(sandbox, ("second-shop", "second-lina-password", "second-lina-shared-key"))
    with pytest.raises(AssertionError):
        login(sandbox, ("second-shop", "demo-lina-password", "demo-lina-shared-key"))


@pytest.mark.parametrize("name", ["checkcode", "redeem", "purchase"])
def test_unknown_or_missing_hash_is_the_documented_400_with_status_error(sandbox, name):
    """Seed: every call answers 200 or 400 ("Error during request", status error, reason in response)."""
    for fields in ({"hash": "not-a-session"}, {}):
        response = call(sandbox, name, code="DEMOHEALTHY00100", amount="1.00", tokens="x", **fields)
        assert response.status_code == 400
        assert response.json() == {"status": "error", "response": "Hash ungültig oder Sitzung abgelaufen"}


@pytest.mark.parametrize("name", ["checkcode", "redeem", "purchase"])
def test_the_session_rejection_can_be_served_as_401_with_another_text(sandbox, name):
    sandbox.set_session_rejection(401, "Session expired")
    response = call(sandbox, name, hash="not-a-session", code="DEMOHEALTHY00100", amount="1.00", tokens="x")
    assert (response.status_code, response.json()) == (
        401,
        {"status": "error", "response": "Session expired"},
    )
    assert sandbox.state()["lina_session_rejection"] == {"status": 401, "text": "Session expired"}
    with pytest.raises(SandboxError):
        sandbox.set_session_rejection(302)


def test_a_changed_client_ip_invalidates_the_hash_and_a_new_login_works(sandbox):
    session = login(sandbox)
    sandbox.set_client_ip("198.51.100.23")
    assert call(sandbox, "checkcode", hash=session, code="DEMOHEALTHY00100").status_code == 400
    assert call(sandbox, "ping").json()["myip"] == "198.51.100.23"
    fresh = login(sandbox)  # the recipe now uses the new IP from ping
    assert call(sandbox, "checkcode", hash=fresh, code="DEMOHEALTHY00100").json()["token"] == "Valid"


def test_binding_sessions_to_the_ip_is_a_switch(sandbox):
    sandbox.set_lina_account("demo-shop", session_ip_bound=False)
    session = login(sandbox)
    sandbox.set_client_ip("198.51.100.23")
    assert call(sandbox, "checkcode", hash=session, code="DEMOHEALTHY00100").json()["token"] == "Valid"


@pytest.mark.parametrize("uses", [1, 3])
def test_sessions_lapse_after_the_set_number_of_uses(sandbox, uses):
    sandbox.set_lina_account("demo-shop", session_max_uses=uses)
    session = login(sandbox)
    for _ in range(uses):
        assert call(sandbox, "checkcode", hash=session, code="DEMOHEALTHY00100").json()["token"] == "Valid"
    rejected = call(sandbox, "checkcode", hash=session, code="DEMOHEALTHY00100")
    assert rejected.status_code == 400 and rejected.json()["status"] == "error"
    # A rejected session is not a failed call towards DENIED.
    assert not any(c["recent_failures"] for c in sandbox.state()["lina_failure_counts"].values())


def test_expired_sessions_are_rejected(sandbox):
    session = login(sandbox)
    assert sandbox.expire_sessions("demo-shop") == 1
    assert call(sandbox, "checkcode", hash=session, code="DEMOHEALTHY00100").status_code == 400
    sandbox.set_lina_account("demo-shop", session_ttl_seconds=0.2)
    short = login(sandbox)
    import time

    time.sleep(0.3)
    assert call(sandbox, "checkcode", hash=short, code="DEMOHEALTHY00100").status_code == 400


def _german(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def test_checkcode_of_a_healthy_token(sandbox):
    session = login(sandbox)
    data = call(sandbox, "checkcode", hash=session, code="demo-heal-thy0-0100").json()
    assert data["status"] == "OK"
    assert data["token"] == "Valid"
    assert data["tokencode"] == "DEMO-HEAL-THY0-0100"
    assert data["startwert"] == "100,00"
    assert data["restwert"] == "100,00"
    assert data["tokencomplete"] == 0
    assert data["tokengueltig"] == _german(date.today() + timedelta(days=365))


@pytest.mark.parametrize(
    ("code", "token", "start", "rest", "complete"),
    [
        ("DEMOPARTLY20LEFT", "Valid", "50,00", "20,00", 0),
        ("DEMOFULLONLY2500", "Valid", "25,00", "25,00", 1),
        ("DEMOUSEDUP000000", "Valid", "40,00", "0,00", 0),
        ("DEMOEXPIRED30EUR", "Valid", "30,00", "30,00", 0),
        ("DEMOBLOCKED00015", "Invalid", "15,00", "15,00", 0),
        ("DEMOBIGVALUE1500", "Valid", "1.500,00", "1.500,00", 0),
    ],
)
def test_checkcode_of_tokens_in_every_state(sandbox, code, token, start, rest, complete):
    data = call(sandbox, "checkcode", hash=login(sandbox), code=code).json()
    assert (data["token"], data["startwert"], data["restwert"], data["tokencomplete"]) == (
        token,
        start,
        rest,
        complete,
    )


def test_checkcode_of_an_expired_token_shows_a_past_date(sandbox):
    data = call(sandbox, "checkcode", hash=login(sandbox), code="DEMOEXPIRED30EUR").json()
    day, month, year = map(int, data["tokengueltig"].split("."))
    assert date(year, month, day) < date.today()


def test_checkcode_of_an_unknown_code_or_another_shops_token(sandbox):
    session = login(sandbox)
    for code in ("ZZZZZZZZZZZZZZZZ", "SECONDSHOP000050"):
        response = call(sandbox, "checkcode", hash=session, code=code)
        assert response.status_code == 200
        assert response.json() == {"status": "OK", "token": "Invalid", "response": "Gutschein nicht gefunden"}


def test_checkcode_without_a_code_is_http_400(sandbox):
    response = call(sandbox, "checkcode", hash=login(sandbox))
    assert response.status_code == 400
    assert response.json()["status"] == "error"


def test_redeem_part_of_a_token(sandbox):
    response = call(sandbox, "redeem", hash=login(sandbox), code="DEMOPARTIAL50EUR", amount="12.50")
    assert response.status_code == 200
    assert response.json() == {
        "status": "OK",
        "response": "",
        "token": "Valid",
        "resp": "OK",
        "msg": "",
        "amount_old": "50,00",
        "amount_new": "37,50",
    }
    assert sandbox.token("DEMOPARTIAL50EUR")["remaining"] == "37.50"
    [entry] = sandbox.journal("lina", "redeem")
    assert entry["applied"] is True
    assert entry["code_masked"] == "••••0EUR"
    assert (entry["amount"], entry["balance_before"], entry["balance_after"]) == ("12.50", "50.00", "37.50")
    assert "DEMOPARTIAL50EUR" not in str(entry)


@pytest.mark.parametrize(
    ("code", "amount", "token", "message"),
    [
        ("DEMOPARTLY20LEFT", "20.01", "Valid", "Restwert nicht ausreichend"),
        ("DEMOUSEDUP000000", "1.00", "Valid", "Restwert nicht ausreichend"),
        ("DEMOFULLONLY2500", "10.00", "Valid", "Gutschein kann nur vollständig eingelöst werden"),
        ("DEMOEXPIRED30EUR", "5.00", "Valid", "Gutschein abgelaufen"),
        ("DEMOBLOCKED00015", "5.00", "Invalid", "Gutschein gesperrt"),
        ("ZZZZZZZZZZZZZZZZ", "5.00", "Invalid", "Gutschein nicht gefunden"),
    ],
)
def test_redeem_refusals_say_resp_err_and_change_nothing(sandbox, code, amount, token, message):
    before = sandbox.token(code)
    response = call(sandbox, "redeem", hash=login(sandbox), code=code, amount=amount)
    assert response.status_code == 200
    data = response.json()
    assert (data["status"], data["resp"], data["token"], data["msg"]) == ("OK", "Err", token, message)
    assert sandbox.token(code) == before
    [entry] = sandbox.journal("lina", "redeem")
    assert entry["applied"] is False and entry["result"] == "Err"


def test_redeem_the_full_value_of_a_full_value_only_token(sandbox):
    data = call(sandbox, "redeem", hash=login(sandbox), code="DEMOFULLONLY2500", amount="25").json()
    assert (data["resp"], data["amount_new"]) == ("OK", "0,00")


@pytest.mark.parametrize("amount", ["", "12,50", "1.234,50", "-5.00", "0", "0.00", "1.005", "abc", "1e3"])
def test_redeem_with_a_malformed_amount_is_http_400(sandbox, amount):
    response = call(sandbox, "redeem", hash=login(sandbox), code="DEMOPARTIAL50EUR", amount=amount)
    assert response.status_code == 400
    assert response.json()["status"] == "error"
    assert sandbox.token("DEMOPARTIAL50EUR")["remaining"] == "50.00"


def test_purchase_with_a_layout_creates_a_token_with_qr_code_and_printable_page(sandbox):
    session = login(sandbox)
    response = call(
        sandbox,
        "purchase",
        hash=session,
        amount="25.00",
        tokens="5f0c2b7e9a1d4c38",
        layout="2",
        tokenfrom="Anna <Team>",
        tokenfor="Ben",
        sendmail="ben@example.com",
    )
    assert response.status_code == 200
    data = response.json()
    assert (data["status"], data["response"], data["amount"]) == ("OK", "", "25.00")
    code = data["code"]
    assert len(code) == 16 and code.isalnum()
    png = base64.b64decode(data["qrcode"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    expected = io.BytesIO()
    segno.make(code, error="m").save(expected, kind="png", scale=5, border=2)
    assert png == expected.getvalue()  # the QR encodes exactly the code

    token = sandbox.token(code)
    assert (token["original"], token["remaining"], token["layout"]) == ("25.00", "25.00", 2)
    assert (token["from_name"], token["for_name"], token["email"]) == (
        "Anna <Team>",
        "Ben",
        "ben@example.com",
    )
    checked = call(sandbox, "checkcode", hash=session, code=code).json()
    assert (checked["token"], checked["restwert"]) == ("Valid", "25,00")

    assert data["layouthttp"].startswith(sandbox.url + "/lina/voucher/")
    page = requests.get(data["layouthttp"], timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert "25,00 €" in html and "Anna &lt;Team&gt;" in html and "Ben" in html
    assert "-".join(code[i : i + 4] for i in range(0, 16, 4)) in html
    assert token["valid_until"][:4] in html and "data:image/png;base64," in html

    [entry] = sandbox.journal("lina", "purchase")
    assert entry["applied"] and entry["amount"] == "25.00" and entry["code_masked"].endswith(code[-4:])
    assert code not in str(entry)


def test_purchase_without_a_layout_has_no_link_and_ignores_names(sandbox):
    data = call(
        sandbox, "purchase", hash=login(sandbox), amount="10", tokens="0d4e7a9c2f6b1835", tokenfrom="x"
    ).json()
    assert data["status"] == "OK" and "layouthttp" not in data
    assert sandbox.token(data["code"])["from_name"] == ""


def test_purchase_with_a_full_value_only_template(sandbox):
    data = call(sandbox, "purchase", hash=login(sandbox), amount="60", tokens="7a2d9e4f1b6c3058").json()
    assert sandbox.token(data["code"])["full_value_only"] is True


@pytest.mark.parametrize(
    "fields",
    [
        {"amount": "25.00", "tokens": "unknown-template"},
        {"amount": "25.00", "tokens": "5f0c2b7e9a1d4c38", "layout": "3"},
        {"amount": "25.00", "tokens": "5f0c2b7e9a1d4c38", "layout": "x"},
        {"amount": "25.00", "tokens": "0d4e7a9c2f6b1835", "sendmail": "not-an-address"},
        {"amount": "25,00", "tokens": "5f0c2b7e9a1d4c38"},
        {"tokens": "5f0c2b7e9a1d4c38"},
        {"amount": "25.00"},
    ],
)
def test_purchase_refusals_are_http_400_and_create_nothing(sandbox, fields):
    before = len(sandbox.tokens())
    response = call(sandbox, "purchase", hash=login(sandbox), **fields)
    assert response.status_code == 400
    assert response.json()["status"] == "error" and response.json()["response"]
    assert len(sandbox.tokens()) == before


def test_templates_can_be_added(sandbox):
    sandbox.add_template("Ostern", "0123abcd", [7])
    data = call(sandbox, "purchase", hash=login(sandbox), amount="5", tokens="0123abcd", layout="7").json()
    assert data["layouthttp"]


@pytest.mark.parametrize("spelling", ["Maintenance", "Maintanance"])
def test_maintenance_answers_every_call(sandbox, spelling):
    session = login(sandbox)
    sandbox.set_maintenance(True, spelling)
    for name, fields in [
        ("ping", {}),
        ("login", {"user": "demo-shop"}),
        ("checkcode", {"hash": session, "code": "DEMOPARTIAL50EUR"}),
        ("redeem", {"hash": session, "code": "DEMOPARTIAL50EUR", "amount": "5.00"}),
    ]:
        response = call(sandbox, name, **fields)
        assert response.status_code == 200
        assert response.json() == {"status": spelling}
    assert sandbox.token("DEMOPARTIAL50EUR")["remaining"] == "50.00"
    sandbox.set_maintenance(False)
    assert call(sandbox, "checkcode", hash=session, code="DEMOPARTIAL50EUR").json()["token"] == "Valid"


def test_unknown_calls_and_other_methods(sandbox):
    assert call(sandbox, "recharge").status_code == 404
    response = requests.get(f"{sandbox.lina_url}/ping", timeout=5)
    assert response.status_code == 405 and response.json()["status"] == "error"
    assert requests.get(f"{sandbox.url}/lina/voucher/unknown-ref", timeout=5).status_code == 404
