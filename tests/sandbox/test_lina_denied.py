"""DENIED after too many failed calls in a window, and recovery after the lock-out (short windows)."""

from __future__ import annotations

import time

from .lina_client import DEMO, call, login, recipe_hash


def _bad_login(sandbox):
    return call(sandbox, "login", user="demo-shop", **{"pass": "0" * 32})


def _good_login_fields():
    return {
        "user": "demo-shop",
        "pass": recipe_hash("md5(md5(password)+ip+key)", DEMO[1], "127.0.0.1", DEMO[2]),
    }


def test_failed_logins_up_to_the_threshold_lock_the_account_then_it_recovers(sandbox):
    sandbox.set_lina_account("demo-shop", fail_threshold=3, fail_window_seconds=5, lockout_seconds=1)
    session = login(sandbox)
    for _ in range(2):
        assert _bad_login(sandbox).status_code == 400
    assert call(sandbox, "login", **_good_login_fields()).status_code == 200  # two failures: still fine
    assert _bad_login(sandbox).status_code == 400  # the third one trips the lock

    denied = call(sandbox, "login", **_good_login_fields())
    assert (denied.status_code, denied.json()) == (200, {"status": "DENIED"})
    # Every call of the account is denied, also with a session made before the lock-out.
    assert call(sandbox, "checkcode", hash=session, code="DEMOHEALTHY00100").json() == {"status": "DENIED"}
    redeem = call(sandbox, "redeem", hash=session, code="DEMOHEALTHY00100", amount="1.00")
    assert redeem.json() == {"status": "DENIED"}
    assert sandbox.token("DEMOHEALTHY00100")["remaining"] == "100.00"
    assert sandbox.state()["lina_accounts"][0]["locked_for_seconds"] > 0
    # DENIED is per calling address (providers.md): another account from the same till is locked too.
    other = call(sandbox, "login", user="second-shop", **{"pass": "0" * 32})
    assert other.json() == {"status": "DENIED"}

    time.sleep(1.2)
    assert call(sandbox, "checkcode", hash=session, code="DEMOHEALTHY00100").json()["token"] == "Valid"
    assert login(sandbox)


def test_failures_outside_the_window_do_not_count(sandbox):
    sandbox.set_lina_account("demo-shop", fail_threshold=3, fail_window_seconds=0.4, lockout_seconds=30)
    for _ in range(2):
        _bad_login(sandbox)
    time.sleep(0.5)
    for _ in range(2):
        _bad_login(sandbox)
    assert call(sandbox, "login", **_good_login_fields()).json()["status"] == "OK"


def test_guessing_unknown_codes_and_malformed_calls_count_as_failures(sandbox):
    sandbox.set_lina_account("demo-shop", fail_threshold=4, fail_window_seconds=10, lockout_seconds=10)
    session = login(sandbox)
    call(sandbox, "checkcode", hash=session, code="GUESS00000000001")
    call(sandbox, "redeem", hash=session, code="GUESS00000000002", amount="5.00")
    call(sandbox, "redeem", hash=session, code="DEMOHEALTHY00100", amount="5,00")  # 400
    # Refusals of real tokens (over balance) are not failures.
    call(sandbox, "redeem", hash=session, code="DEMOPARTLY20LEFT", amount="99.00")
    assert call(sandbox, "checkcode", hash=session, code="DEMOHEALTHY00100").json()["token"] == "Valid"
    call(sandbox, "purchase", hash=session, amount="5", tokens="no-such-template")
    assert call(sandbox, "checkcode", hash=session, code="DEMOHEALTHY00100").json() == {"status": "DENIED"}


def test_denied_status_code_and_unlock_are_switchable(sandbox):
    sandbox.set_lina_account("demo-shop", fail_threshold=1, lockout_seconds=60, denied_status=403)
    _bad_login(sandbox)
    response = call(sandbox, "login", **_good_login_fields())
    assert (response.status_code, response.json()) == (403, {"status": "DENIED"})
    sandbox.set_lina_account("demo-shop", unlock=True)
    assert call(sandbox, "login", **_good_login_fields()).json()["status"] == "OK"


def test_the_defaults_are_five_failures_in_sixty_seconds_and_five_minutes_lock_out(sandbox):
    [account] = [a for a in sandbox.state()["lina_accounts"] if a["username"] == "demo-shop"]
    assert (account["fail_threshold"], account["fail_window_seconds"], account["lockout_seconds"]) == (
        5,
        60,
        300,
    )
    for _ in range(4):
        _bad_login(sandbox)
    assert call(sandbox, "login", **_good_login_fields()).json()["status"] == "OK"
    _bad_login(sandbox)
    assert call(sandbox, "login", **_good_login_fields()).json() == {"status": "DENIED"}


def test_failures_are_counted_per_calling_address_by_default(sandbox):
    sandbox.set_lina_account("demo-shop", fail_threshold=3, fail_window_seconds=30, lockout_seconds=30)
    sandbox.set_client_ip("198.51.100.1")  # shop A's egress
    for _ in range(2):
        _bad_login(sandbox)
    sandbox.set_client_ip("198.51.100.2")  # another shop: its own count
    for _ in range(2):
        _bad_login(sandbox)
    counts = sandbox.state()["lina_failure_counts"]
    assert {k: v["recent_failures"] for k, v in counts.items()} == {
        "address:198.51.100.1": 2,
        "address:198.51.100.2": 2,
    }
    sandbox.set_client_ip("198.51.100.1")
    _bad_login(sandbox)  # the third from shop A
    good = {
        "user": "demo-shop",
        "pass": recipe_hash("md5(md5(password)+ip+key)", DEMO[1], "198.51.100.1", DEMO[2]),
    }
    assert call(sandbox, "login", **good).json() == {"status": "DENIED"}
    sandbox.set_client_ip("198.51.100.2")
    good["pass"] = recipe_hash("md5(md5(password)+ip+key)", DEMO[1], "198.51.100.2", DEMO[2])
    assert call(sandbox, "login", **good).json()["status"] == "OK"


def test_counting_per_account_is_a_switch(sandbox):
    sandbox.set_denied_scope("account")
    sandbox.set_lina_account("demo-shop", fail_threshold=2)
    for _ in range(2):
        _bad_login(sandbox)
    assert call(sandbox, "login", **_good_login_fields()).json() == {"status": "DENIED"}
    assert login(sandbox, ("second-shop", "second-lina-password", "second-lina-shared-key"))
