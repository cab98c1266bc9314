"""A small stateful LINA + Allsafe speaking the WIRE contract, served through ``responses``.

It exists for the provider tests only (the real simulator is sandbox/). It issues session
hashes, keeps tokens and stock, counts requests per operation, and can be told to answer the
next request of an operation with a fault. Every hash it issues and every code it knows is
added to ``sensitive`` so the log guard (conftest.py) can prove none reached a log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from http.client import RemoteDisconnected
from urllib.parse import parse_qs

import requests
import responses
from urllib3.exceptions import NewConnectionError, ProtocolError

from vouchers.providers.lina import RECIPES
from vouchers.values.codes import format_code, normalize_code

LINA_BASE = "https://lina.test/extern/tokenapi"
ALLSAFE_BASE = "https://allsafe.test/api"
USERNAME = "api-user"
PASSWORD = "Pa55-word-never-logged"
SHARED_KEY = "Shared-Key-never-logged"
PUBLIC_IP = "203.0.113.7"

#: Faults a test can put in front of the next request of an operation.
FAULTS = ("server_error", "html", "drop_after_send", "refuse_connect", "denied", "maintenance")


def _money(value: Decimal) -> str:
    return f"{value:.2f}".replace(".", ",")


@dataclass
class Token:
    value: Decimal
    remaining: Decimal
    valid_until: str = "31.12.2099"
    full_value_only: bool = False


@dataclass
class Simulator:
    sensitive: list[str]
    recipe: str = "md5(md5(password)+ip+key)"
    ip: str = PUBLIC_IP
    tokens: dict[str, Token] = field(default_factory=dict)
    templates: set[str] = field(default_factory=lambda: {"tmpl-hash-1"})
    stock: dict[tuple[str, Decimal], int] = field(default_factory=dict)
    vault_linked: bool = True
    hashes: set[str] = field(default_factory=set)
    requests: Counter = field(default_factory=Counter)
    faults: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    maintenance: bool = False  # a switch, as at LINA (and the sandbox): every call answers it
    # A rejected session hash: the documented form (400, status error, a text) or 401 (a switch).
    session_rejection_status: int = 400
    sold: int = 0

    # --- Arrange ---------------------------------------------------------------------------
    def add_token(self, code: str, value, *, remaining=None, full_value_only=False, valid_until="31.12.2099"):
        code = normalize_code(code)
        self.sensitive.extend([code, format_code(code)])
        value = Decimal(str(value))
        self.tokens[code] = Token(
            value, Decimal(str(remaining)) if remaining is not None else value, valid_until, full_value_only
        )

    def set_stock(self, vendor: str, value, count: int) -> None:
        self.stock[(vendor, Decimal(str(value)))] = count

    def fault(self, provider: str, operation: str, fault: str) -> None:
        """Queue ``fault`` for the next request of ``operation``; "maintenance" is LINA's switch
        instead: from now on every LINA call answers it (WIRE.md: on ANY call)."""
        assert fault in FAULTS, fault
        if fault == "maintenance":
            assert provider == "lina", "maintenance is a LINA state"
            self.maintenance = True
            return
        self.faults[(provider, operation)].append(fault)

    def expire_sessions(self) -> None:
        self.hashes.clear()

    # --- Wiring ----------------------------------------------------------------------------
    def install(self, mock: responses.RequestsMock) -> None:
        mock.add_callback(responses.POST, re.compile(re.escape(LINA_BASE) + r"/(\w+)$"), callback=self._lina)
        mock.add_callback(responses.GET, ALLSAFE_BASE + "/availability", callback=self._availability)
        mock.add_callback(
            responses.POST, re.compile(re.escape(ALLSAFE_BASE) + r"/.+"), callback=self._allocate
        )

    def _take_fault(self, provider: str, operation: str):
        queue = self.faults.get((provider, operation))
        return queue.pop(0) if queue else None

    @staticmethod
    def _before_send_faults(fault):
        if fault == "refuse_connect":
            raise requests.ConnectionError(NewConnectionError(None, "Connection refused"))

    @staticmethod
    def _fault_answer(fault):
        if fault == "server_error":
            return 502, {"Content-Type": "text/html"}, "<html><body><h1>502 Bad Gateway</h1></body></html>"
        if fault == "html":
            return (
                200,
                {"Content-Type": "text/html"},
                "<!doctype html><title>Login</title><p>Proxy says hi</p>",
            )
        return None

    @staticmethod
    def _lost():
        raise requests.ConnectionError(
            ProtocolError("Connection aborted.", RemoteDisconnected("Remote end closed connection"))
        )

    # --- LINA ------------------------------------------------------------------------------
    def _lina(self, request):
        operation = request.url.rsplit("/", 1)[1]
        self.requests[("lina", operation)] += 1
        fault = self._take_fault("lina", operation)
        self._before_send_faults(fault)
        canned = self._fault_answer(fault)
        if canned:
            return canned
        if fault == "denied":
            return self._json(403, {"status": "DENIED"})
        if self.maintenance:
            return self._json(200, {"status": "Maintanance"})  # the old spelling still occurs
        form = {k: v[0] for k, v in parse_qs(request.body or "", keep_blank_values=True).items()}
        if operation == "ping":
            return self._json(200, {"status": "OK", "myip": self.ip})
        if operation == "login":
            expected = RECIPES[self.recipe](PASSWORD, self.ip, SHARED_KEY)
            if form.get("user") != USERNAME or form.get("pass") != expected:
                return self._json(400, {"status": "error", "response": "Login fehlgeschlagen"})
            session_hash = secrets.token_hex(16)
            self.hashes.add(session_hash)
            self.sensitive.append(session_hash)
            return self._json(200, {"status": "OK", "hash": session_hash})
        if form.get("hash") not in self.hashes:
            return self._json(self.session_rejection_status, {"status": "error", "response": "Hash ungültig"})
        handler = getattr(self, f"_lina_{operation}", None)
        if handler is None:
            return self._json(400, {"status": "error", "response": "Unbekannte Funktion"})
        answer = handler(form)
        if fault == "drop_after_send":
            self._lost()  # the operation above was applied; the answer never arrives
        return answer

    def _lina_checkcode(self, form):
        code = normalize_code(form.get("code", ""))
        token = self.tokens.get(code)
        if token is None:
            return self._json(
                200, {"status": "OK", "token": "Invalid", "response": "Gutschein nicht gefunden"}
            )
        return self._json(
            200,
            {
                "status": "OK",
                "response": "",
                "token": "Valid",
                "tokencode": format_code(code),
                "startwert": _money(token.value),
                "restwert": _money(token.remaining),
                "tokengueltig": token.valid_until,
                "tokencomplete": "1" if token.full_value_only else 0,
            },
        )

    def _lina_redeem(self, form):
        code = normalize_code(form.get("code", ""))
        token = self.tokens.get(code)
        amount = Decimal(form.get("amount", "0"))
        if token is None:
            return self._json(
                200, {"status": "OK", "token": "Invalid", "resp": "Err", "msg": "Gutschein ungültig"}
            )
        if amount > token.remaining or (token.full_value_only and amount != token.remaining):
            return self._json(
                200, {"status": "OK", "token": "Valid", "resp": "Err", "msg": "Restwert nicht ausreichend"}
            )
        before = token.remaining
        token.remaining -= amount
        return self._json(
            200,
            {
                "status": "OK",
                "token": "Valid",
                "resp": "OK",
                "amount_old": _money(before),
                "amount_new": _money(token.remaining),
            },
        )

    def _lina_purchase(self, form):
        if form.get("tokens") not in self.templates:
            return self._json(400, {"status": "error", "response": "Unbekannte Gutscheinvorlage"})
        self.sold += 1
        code = f"SOLD{self.sold:04d}ABCD{self.sold:04d}"
        self.add_token(code, form["amount"])
        answer = {"status": "OK", "response": "", "code": code, "amount": form["amount"]}
        if form.get("layout"):
            answer["layouthttp"] = f"https://lina.test/layout/{self.sold}"
        return self._json(200, answer)

    # --- Allsafe ---------------------------------------------------------------------------
    def _authorised(self, request) -> bool:
        expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        return request.headers.get("Authorization") == expected

    def _availability(self, request):
        self.requests[("allsafe", "availability")] += 1
        fault = self._take_fault("allsafe", "availability")
        self._before_send_faults(fault)
        canned = self._fault_answer(fault)
        if canned:
            return canned
        if not self._authorised(request):
            return self._json(401, {"detail": "Unauthorized"})
        if not self.vault_linked:
            return self._json(491, {"detail": "No Vault Linked"})
        rows = [
            {"vendor": vendor, "value": int(value), "remaining": count}
            for (vendor, value), count in sorted(self.stock.items())
        ]
        answer = (200, {}, json.dumps(rows)) if rows else (204, {}, "")
        if fault == "drop_after_send":
            self._lost()
        return answer

    def _allocate(self, request):
        self.requests[("allsafe", "allocate")] += 1
        fault = self._take_fault("allsafe", "allocate")
        self._before_send_faults(fault)
        canned = self._fault_answer(fault)
        if canned:
            return canned
        if not self._authorised(request):
            return self._json(401, {"detail": "Unauthorized"})
        if not self.vault_linked:
            return self._json(491, {"detail": "No Vault Linked"})
        try:
            body = json.loads(request.body)
            vendor, value, reference = body["vendor"], Decimal(str(body["value"])), body["reference"]
        except (ValueError, KeyError, TypeError):
            return self._json(495, {"detail": "Validation Failed"})
        if vendor not in {v for v, _ in self.stock}:
            return self._json(496, {"detail": "Invalid Vendor"})
        if self.stock.get((vendor, value), 0) <= 0:
            return self._json(492, {"detail": "No vouchers"})
        self.stock[(vendor, value)] -= 1
        pin = hashlib.sha256(f"{vendor}{value}{reference}".encode()).hexdigest()[:12].upper()
        self.sensitive.append(pin)
        answer = self._json(
            200,
            {
                "pin": pin,
                "serial": f"SER-{reference}",
                "vendor": vendor,
                "value": int(value),
                "expiry": "2027-12-31",
            },
        )
        if fault == "drop_after_send":
            self._lost()
        return answer

    @staticmethod
    def _json(status: int, payload) -> tuple[int, dict, str]:
        return status, {"Content-Type": "application/json"}, json.dumps(payload)
