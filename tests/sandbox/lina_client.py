"""A deliberately small LINA caller for the sandbox tests: plain requests and hashlib, so the tests
check the wire contract itself rather than the portal's provider client."""

from __future__ import annotations

import hashlib

import requests

DEMO = ("demo-shop", "demo-lina-password", "demo-lina-shared-key")
TIMEOUT = 5


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 (the provider's recipe)


def recipe_hash(recipe: str, password: str, ip: str, key: str) -> str:
    return {
        "md5(md5(password)+ip+key)": lambda: md5(md5(password) + ip + key),
        "md5(password+ip+key)": lambda: md5(password + ip + key),
        "md5(ip+md5(password)+key)": lambda: md5(ip + md5(password) + key),
    }[recipe]()


def call(sandbox, name: str, timeout: float = TIMEOUT, **fields) -> requests.Response:
    return requests.post(f"{sandbox.lina_url}/{name}", data=fields, timeout=timeout)


def login(
    sandbox,
    account=DEMO,
    recipe="md5(md5(password)+ip+key)",
    *,
    user_field="user",
    pass_field="pass",  # noqa: S107
) -> str:
    user, password, key = account
    ip = call(sandbox, "ping").json()["myip"]
    response = call(
        sandbox, "login", **{user_field: user, pass_field: recipe_hash(recipe, password, ip, key)}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "OK"
    return response.json()["hash"]
