"""The LINA token API: ``POST <base>/<name>`` with form fields, JSON answers (also on HTTP 400).

Behaviour follows providers.md and WIRE.md, including the [assumed] parts, which are options of
each :class:`~sandbox.state.LinaAccount` (login recipe, login field names, DENIED thresholds).

Failed calls that count towards DENIED: a refused login, a malformed request, and a code that is
not one of the account's tokens (code guessing). A refused redeem of a real token (over balance,
expired) does not count, nor does a rejected session hash. They are counted per calling ADDRESS
(providers.md: every till of a shop shares it; ``store.lina_denied_scope = "account"`` counts per
account instead), with the thresholds of the account involved.

A rejected session hash is answered in the documented form by default: HTTP 400, ``status:
error`` and a text about the hash/session (``store.lina_session_rejection``; 401 by a switch).
Sessions lapse after their time, after ``session_max_uses`` calls, on a change of the caller's
address (``session_ip_bound``), or on demand (control API).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal

from .formats import (
    berlin_today,
    display_code,
    dot_amount,
    euro,
    german_date,
    mask_code,
    normalize_code,
    parse_wire_amount,
)
from .qr import qr_png_base64
from .replies import Reply
from .state import FailureCount, LinaAccount, Session, Store, Token

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are typed at the till
CODE_LENGTH = 16
HASHED_CALLS = ("checkcode", "redeem", "purchase")
SESSION_SWEEP_AT = 10_000


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def login_hash(recipe: str, password: str, ip: str, shared_key: str) -> str:
    """The login ``pass`` value for each named recipe (Campaign.lina_hash_recipe choices)."""
    if recipe == "md5(md5(password)+ip+key)":
        return _md5(_md5(password) + ip + shared_key)
    if recipe == "md5(password+ip+key)":
        return _md5(password + ip + shared_key)
    if recipe == "md5(ip+md5(password)+key)":
        return _md5(ip + _md5(password) + shared_key)
    raise ValueError(f"unknown recipe {recipe!r}")


def _error(text: str, status: int = 400) -> Reply:
    return Reply.json({"status": "error", "response": text}, status)


def _denied(account: LinaAccount) -> Reply:
    return Reply.json({"status": "DENIED"}, account.denied_status)


class Lina:
    """Handlers for one call each; every handler runs entirely under ``store.lock``."""

    def __init__(self, store: Store):
        self.store = store
        self._caller = ""  # the calling address of the call being handled (set under the lock)

    def handle(self, name: str, form: Mapping[str, str], *, ip: str, base_url: str, fault: str = "") -> Reply:
        store = self.store
        with store.lock:
            seen_ip = store.lina_seen_ip or ip
            self._caller = seen_ip
            if store.lina_maintenance.enabled:
                # providers.md: the maintenance answer comes on ANY call, not only on ping.
                return Reply.json({"status": store.lina_maintenance.spelling})
            if name == "ping":
                return Reply.json({"status": "OK", "myip": seen_ip})
            if name == "login":
                return self._login(form, seen_ip)
            if name not in HASHED_CALLS:
                return _error("Unbekannte Funktion", 404)
            session = self._session(form.get("hash", ""), seen_ip)
            if session is None:
                rejection = store.lina_session_rejection
                return Reply.json({"status": "error", "response": rejection.text}, rejection.status)
            account = store.lina_accounts[session.account]
            now = store.clock()
            if self._locked(account, now):
                return _denied(account)
            if name == "checkcode":
                return self._checkcode(account, form, now)
            if name == "redeem":
                return self._redeem(account, form, now, fault)
            return self._purchase(account, form, now, base_url, fault)

    # --- calls --------------------------------------------------------------------------------
    def _login(self, form: Mapping[str, str], ip: str) -> Reply:
        store = self.store
        now = store.clock()
        account = next(
            (a for a in store.lina_accounts.values() if form.get(a.user_field) == a.username),
            None,
        )
        if account is None:
            if store.lina_denied_scope == "address":
                if self._locked(None, now):
                    return _denied(LinaAccount("", "", ""))
                self._fail(None, now)
            return _error("Login fehlgeschlagen")
        if self._locked(account, now):
            return _denied(account)
        expected = login_hash(account.recipe, account.password, ip, account.shared_key)
        given = form.get(account.pass_field, "").strip().lower()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            self._fail(account, now)
            return _error("Login fehlgeschlagen")
        session = Session(
            hash=store.new_session_hash(),
            account=account.username,
            ip=ip,
            expires_at=now + account.session_ttl_seconds,
        )
        if len(store.lina_sessions) > SESSION_SWEEP_AT:  # load tests log in a lot; forget dead sessions
            for dead in [h for h, s in store.lina_sessions.items() if s.expires_at <= now]:
                del store.lina_sessions[dead]
        store.lina_sessions[session.hash] = session
        return Reply.json({"status": "OK", "hash": session.hash})

    def _session(self, session_hash: str, ip: str) -> Session | None:
        """The session for a hash, if it is known, not expired, not used up and used from the IP
        it was made for (each a switch of the account)."""
        store = self.store
        session = store.lina_sessions.get(session_hash.strip())
        if session is None:
            return None
        account = store.lina_accounts.get(session.account)
        if account is None or store.clock() >= session.expires_at:
            store.lina_sessions.pop(session.hash, None)
            return None
        if account.session_ip_bound and session.ip != ip:  # providers.md: a changed IP invalidates it
            store.lina_sessions.pop(session.hash, None)
            return None
        if account.session_max_uses and session.uses >= account.session_max_uses:
            store.lina_sessions.pop(session.hash, None)
            return None
        session.uses += 1
        return session

    # --- DENIED bookkeeping (per calling address by default) ----------------------------------
    def _count_for(self, account: LinaAccount | None) -> FailureCount | None:
        store = self.store
        if store.lina_denied_scope == "account":
            if account is None:
                return None
            key = f"account:{account.username}"
        else:
            key = f"address:{self._caller}"
        return store.lina_failure_counts.setdefault(key, FailureCount())

    def _locked(self, account: LinaAccount | None, now: float) -> bool:
        count = self._count_for(account)
        return count is not None and count.is_locked(now)

    def _fail(self, account: LinaAccount | None, now: float) -> None:
        count = self._count_for(account)
        if count is None:
            return
        rules = account or LinaAccount("", "", "", **self._default_rules())
        count.record(
            now,
            threshold=rules.fail_threshold,
            window=rules.fail_window_seconds,
            lockout=rules.lockout_seconds,
        )

    def _default_rules(self) -> dict:
        keys = ("fail_threshold", "fail_window_seconds", "lockout_seconds")
        return {k: v for k, v in self.store.lina_defaults.items() if k in keys}

    def _token(self, account: LinaAccount, raw_code: str) -> Token | None:
        token = self.store.lina_tokens.get(normalize_code(raw_code))
        return token if token is not None and token.account == account.username else None

    def _checkcode(self, account: LinaAccount, form: Mapping[str, str], now: float) -> Reply:
        raw = form.get("code", "").strip()
        if not raw:
            self._fail(account, now)
            return _error("Parameter code fehlt")
        token = self._token(account, raw)
        if token is None:
            self._fail(account, now)
            return Reply.json({"status": "OK", "token": "Invalid", "response": "Gutschein nicht gefunden"})
        return Reply.json(
            {
                "status": "OK",
                "response": "Gutschein gesperrt" if token.blocked else "",
                "token": "Invalid" if token.blocked else "Valid",
                "tokencode": display_code(token.code),
                "startwert": euro(token.original),
                "restwert": euro(token.remaining),
                "tokengueltig": german_date(token.valid_until),
                "tokencomplete": 1 if token.full_value_only else 0,
            }
        )

    def _redeem(self, account: LinaAccount, form: Mapping[str, str], now: float, fault: str) -> Reply:
        raw_code = form.get("code", "").strip()
        raw_amount = form.get("amount", "")
        code = normalize_code(raw_code)
        journal = {"account": account.username, "code_masked": mask_code(code), "fault": fault or None}
        if not raw_code or not raw_amount.strip():
            self._fail(account, now)
            self.store.record("lina", "redeem", **journal, amount=raw_amount, applied=False, result="error")
            return _error("Parameter code oder amount fehlt")
        try:
            amount = parse_wire_amount(raw_amount)
        except ValueError:
            self._fail(account, now)
            self.store.record("lina", "redeem", **journal, amount=raw_amount, applied=False, result="error")
            return _error("Ungültiger Betrag")
        journal["amount"] = dot_amount(amount)
        token = self._token(account, code)
        if token is None:
            self._fail(account, now)
            return self._refuse(journal, "Invalid", "Gutschein nicht gefunden")
        if token.blocked:
            return self._refuse(journal, "Invalid", "Gutschein gesperrt")
        if berlin_today() > token.valid_until:
            return self._refuse(journal, "Valid", "Gutschein abgelaufen", token)
        if amount > token.remaining:
            return self._refuse(journal, "Valid", "Restwert nicht ausreichend", token)
        if token.full_value_only and amount != token.remaining:
            return self._refuse(journal, "Valid", "Gutschein kann nur vollständig eingelöst werden", token)
        before = token.remaining
        token.remaining = before - amount
        self.store.record(
            "lina",
            "redeem",
            **journal,
            applied=True,
            result="OK",
            balance_before=dot_amount(before),
            balance_after=dot_amount(token.remaining),
        )
        return Reply.json(
            {
                "status": "OK",
                "response": "",
                "token": "Valid",
                "resp": "OK",
                "msg": "",
                "amount_old": euro(before),
                "amount_new": euro(token.remaining),
            }
        )

    def _refuse(self, journal: dict, validity: str, message: str, token: Token | None = None) -> Reply:
        balance = {"balance_before": dot_amount(token.remaining)} if token else {}
        self.store.record(
            "lina", "redeem", **journal, **balance, applied=False, result="Err", message=message
        )
        return Reply.json({"status": "OK", "response": "", "token": validity, "resp": "Err", "msg": message})

    def _purchase(
        self, account: LinaAccount, form: Mapping[str, str], now: float, base_url: str, fault: str
    ) -> Reply:
        store = self.store
        journal = {"account": account.username, "fault": fault or None}

        def refuse(text: str) -> Reply:
            self._fail(account, now)
            store.record("lina", "purchase", **journal, applied=False, result="error", message=text)
            return _error(text)

        raw_amount = form.get("amount", "")
        journal["amount"] = raw_amount
        template_hash = form.get("tokens", "").strip()
        if not raw_amount.strip() or not template_hash:
            return refuse("Parameter amount oder tokens fehlt")
        try:
            amount = parse_wire_amount(raw_amount)
        except ValueError:
            return refuse("Ungültiger Betrag")
        journal["amount"] = dot_amount(amount)
        template = account.templates.get(template_hash)
        if template is None:
            return refuse("Gutscheinvorlage nicht gefunden")
        journal["template"] = template.name
        raw_layout = form.get("layout", "").strip()
        try:
            layout = int(raw_layout) if raw_layout else 0
        except ValueError:
            return refuse("Ungültiges Layout")
        if layout < 0 or (layout > 0 and layout not in template.layouts):
            return refuse("Layout ist dieser Gutscheinvorlage nicht zugeordnet")
        email = form.get("sendmail", "").strip()
        if email and ("@" not in email or " " in email):
            return refuse("Ungültige E-Mail-Adresse")
        token = Token(
            code=self._new_code(),
            account=account.username,
            original=amount,
            remaining=amount,
            valid_until=berlin_today() + timedelta(days=template.valid_days),
            full_value_only=template.full_value_only,
            template=template.name,
            layout=layout or None,
            # providers.md: tokenfrom/tokenfor only mean something with a layout
            from_name=form.get("tokenfrom", "").strip() if layout else "",
            for_name=form.get("tokenfor", "").strip() if layout else "",
            email=email,
        )
        answer = {
            "status": "OK",
            "response": "",
            "code": token.code,
            "amount": dot_amount(amount),
            "qrcode": qr_png_base64(token.code),
        }
        if layout:
            token.layout_ref = secrets.token_urlsafe(12)
            store.lina_layout_refs[token.layout_ref] = token.code
            answer["layouthttp"] = f"{base_url}/lina/voucher/{token.layout_ref}"
        store.lina_tokens[token.code] = token
        store.record(
            "lina",
            "purchase",
            **journal,
            code_masked=mask_code(token.code),
            layout=token.layout,
            sendmail=bool(email),
            applied=True,
            result="OK",
        )
        return Reply.json(answer)

    def _new_code(self) -> str:
        while True:
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            if code not in self.store.lina_tokens:
                return code


def new_token(
    store: Store,
    *,
    account: str,
    value: Decimal,
    remaining: Decimal | None = None,
    code: str = "",
    valid_until=None,
    full_value_only: bool = False,
    blocked: bool = False,
) -> Token:
    """Create (or replace) a token directly, for seeding and the control API."""
    with store.lock:
        if account not in store.lina_accounts:
            raise ValueError(f"unknown LINA account {account!r}")
        code = normalize_code(code) or Lina(store)._new_code()
        token = Token(
            code=code,
            account=account,
            original=value,
            remaining=value if remaining is None else remaining,
            valid_until=valid_until or berlin_today() + timedelta(days=365),
            full_value_only=full_value_only,
            blocked=blocked,
        )
        store.lina_tokens[code] = token
        return token
