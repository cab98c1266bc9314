"""LINA Voucher token API client (providers.md, "LINA Voucher"; wire details in the WIRE contract).

Every call is a form POST to ``<base>/<name>`` answering JSON, also on HTTP 400. The session
hash from ``login`` lives in Django's cache per campaign, so every web and worker process shares
one session: it is reused until the server rejects it, then the client logs in once more and
repeats the call once — safe even for redeem/purchase, because a rejected call was not applied.
The seed documents only HTTP 200 and 400 ("Error during request", ``status: error`` with the
reason in ``response``), so a rejected session is recognised in both plausible forms: HTTP 401,
or HTTP 400 / ``status: error`` whose text names the hash, session or login (the phrases are a
campaign setting, ``Campaign.lina_session_phrases``).

LINA counts failed calls per calling address and answers ``DENIED`` past its (unpublished)
threshold, which stops every till of the shop. So the client keeps its own budget of failed
calls per LINA account (base host + user name: all tills, all campaigns, all processes share it,
in the shared cache) below a configurable limit (``LINA_FAILED_CALL_LIMIT`` per
``LINA_FAILED_CALL_WINDOW_SECONDS``), and refuses calls that might fail once it is spent. A
``DENIED`` stores a cool-down under the same account key; until it passes no process calls that
account at all, since every further call would extend the lock-out.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache as default_cache
from django.utils import timezone
from django.utils.translation import gettext as _

from ..security.redaction import redact
from ..values.codes import format_code, normalize_code
from . import parsing
from .base import (
    PingResult,
    ProviderConfig,
    PurchaseRequest,
    PurchaseResult,
    RedeemResult,
    TokenInfo,
)
from .errors import (
    AuthFailed,
    CallBudgetSpent,
    Misconfigured,
    ProviderMaintenance,
    ProviderUnavailable,
    RateLimited,
    RedeemRefused,
    SessionRejected,
    TokenInvalid,
    UnexpectedAnswer,
    ValidationFailed,
)
from .http import HttpAnswer, Transport, unusable_answer

logger = logging.getLogger(__name__)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


#: The login ``pass`` recipes (providers.md: the real one is not public, [assumed]). The keys are
#: exactly the Campaign.lina_hash_recipe choices.
RECIPES = {
    "md5(md5(password)+ip+key)": lambda password, ip, key: _md5(_md5(password) + ip + key),
    "md5(password+ip+key)": lambda password, ip, key: _md5(password + ip + key),
    "md5(ip+md5(password)+key)": lambda password, ip, key: _md5(ip + _md5(password) + key),
}
DEFAULT_RECIPE = "md5(md5(password)+ip+key)"

MAINTENANCE_STATUSES = {"maintenance", "maintanance"}  # the old spelling still occurs (providers.md)

# Answers definite by their status alone, whatever the body: a 401 is one plausible form of a
# rejected session hash (the documented one is a 400 with a JSON body, definite anyway), so even a
# money-moving call may log in again and be repeated once.
DEFINITE_STATUSES = frozenset({401})

HASHED_OPERATIONS = frozenset({"checkcode", "redeem", "purchase"})

#: Words in a 400 / ``status: error`` text that mean the session hash was rejected, English and
#: German (LINA's own texts are German). Matched case-insensitively as substrings; the campaign
#: setting ``lina_session_phrases`` replaces them.
DEFAULT_SESSION_PHRASES = (
    "hash",
    "session",
    "login",
    "logged in",
    "sitzung",
    "anmeld",
    "angemeldet",
    "eingeloggt",
)

# A cached session hash is dropped after this long even if never rejected: it costs one login.
SESSION_TTL_SECONDS = 12 * 60 * 60


def login_pass(recipe: str, password: str, ip: str, shared_key: str) -> str:
    """The lower-hex MD5 sent as the login ``pass`` field."""
    try:
        return RECIPES[recipe](password, ip, shared_key)
    except KeyError:
        raise Misconfigured(
            _("The campaign's LINA login recipe is unknown."),
            what_to_check=[_("Pick one of the listed login hash recipes in the campaign's LINA options.")],
        ) from None


def session_key(campaign_id: int) -> str:
    return f"providers:lina:{campaign_id}:session"


def account_id(base_url: str, username: str) -> str:
    """Who LINA counts failed calls for: one account reached at one host, whatever the campaign.

    Hashed so user names do not appear in cache keys; the scheme, path and letter case of the
    base URL do not make a second account.
    """
    host = (urlsplit(base_url or "").hostname or "").lower()
    material = f"{host}\x1f{(username or '').strip().lower()}"
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def cooldown_key(base_url: str, username: str) -> str:
    return f"providers:lina:account:{account_id(base_url, username)}:denied-until"


def budget_slot_key(base_url: str, username: str, slot: int) -> str:
    return f"providers:lina:account:{account_id(base_url, username)}:failed:{slot}"


def failed_call_limit() -> tuple[int, int]:
    """(failed calls allowed, window in seconds) of the shared budget; at least (1, 1)."""
    limit = max(1, int(getattr(settings, "LINA_FAILED_CALL_LIMIT", 4)))
    window = max(1, int(getattr(settings, "LINA_FAILED_CALL_WINDOW_SECONDS", 60)))
    return limit, window


def _login_lock_key(campaign_id: int) -> str:
    return f"providers:lina:{campaign_id}:login-lock"


class _HashRejected(Exception):
    """A hashed call's session was rejected (HTTP 401, or 400/``status: error`` with a session
    phrase): the hash is unknown, expired or bound to another IP. ``cause`` is for the log."""

    def __init__(self, cause: str, reason: str = "", status_code: int | None = None):
        self.cause = cause
        self.reason = reason
        self.status_code = status_code
        super().__init__(cause)


class _SharedCache:
    """The LINA client's access to the shared cache (session hash, login lock, DENIED cool-down).

    Every use sits before a request is sent or after a definite "no", so an unreachable cache
    means nothing was sent: it becomes :class:`ProviderUnavailable`. Before, a Redis outage made
    the redeem/purchase code see an unexpected error, and a bulk sale put every row it reached
    in review although no purchase had gone out (drills/drill_redis_outage.py).
    """

    def __init__(self, cache):
        self._cache = cache

    def __getattr__(self, name):
        method = getattr(self._cache, name)

        def call(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                raise ProviderUnavailable(
                    detail=f"shared cache unreachable ({type(exc).__name__}); nothing sent"
                ) from exc

        return call


class LinaClient:
    """Implements :class:`~vouchers.providers.base.LinaProvider` over HTTP."""

    def __init__(self, config: ProviderConfig, *, cache=None):
        self.config = config
        self.cache = _SharedCache(cache if cache is not None else default_cache)
        self.transport = Transport.for_client("lina", config, secrets=(config.password, config.shared_key))
        self.logins = 0  # how many logins this instance made (benchmark and tests)
        # Values of shared-cache keys a caller read for this client (prime_shared_reads), each
        # used once, by the next read of that key, instead of a round trip of its own.
        self._primed: dict[str, Any] = {}

    # --- Operations ----------------------------------------------------------------------

    def ping(self) -> PingResult:
        """POST ping. Returns the public IP LINA sees; a changed IP drops the cached session.
        Raises ProviderUnavailable (also Maintenance), RateLimited. Safe to retry."""
        data = self._post("ping", {}, money_moving=False)
        ip = parsing.lenient(parsing.parse_text, data.get("myip")) or ""
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise UnexpectedAnswer(detail="ping: 'myip' is not an IP address", raw=data) from None
        cached = self._cached_session()
        if cached and cached.get("ip") != ip:
            self.cache.delete(session_key(self.config.campaign_id))
        return PingResult(ok=True, ip=ip, raw=data)

    def login(self, *, recipe: str | None = None, ip: str | None = None, remember: bool = True) -> str:
        """ping (unless ``ip`` is given) then POST login; returns the session hash.

        ``remember=False`` tries a recipe without touching the shared session (test connection).
        Raises AuthFailed (login refused), Misconfigured (credentials missing), RateLimited,
        ProviderUnavailable. Retried on transport errors only; a refused login is never retried
        (failed logins count towards DENIED).
        """
        config = self.config
        if not (config.username and config.password and config.shared_key):
            raise Misconfigured(
                _("The campaign has no complete LINA credentials."),
                what_to_check=[_("Enter the API user name, password and shared key of the campaign.")],
            )
        recipe = recipe or config.lina_hash_recipe or DEFAULT_RECIPE
        if ip is None:
            ip = self.ping().ip
        pass_value = login_pass(recipe, config.password, ip, config.shared_key)
        form = {config.lina_login_user_field: config.username, config.lina_login_pass_field: pass_value}
        self.logins += 1
        data = self._post("login", form, money_moving=False, secrets=(pass_value,), login_ip=ip)
        session_hash = parsing.lenient(parsing.parse_text, data.get("hash")) or ""
        if not session_hash:
            raise UnexpectedAnswer(detail="login: status OK without a hash", raw=None)
        if remember:
            self.cache.set(
                session_key(config.campaign_id),
                {"hash": session_hash, "ip": ip, "fingerprint": self._fingerprint()},
                timeout=SESSION_TTL_SECONDS,
            )
        return session_hash

    def check(self, code: str) -> TokenInfo:
        """POST checkcode (hash, code). An unknown code is a TokenInfo with ``valid=False``.
        Raises ProviderUnavailable, RateLimited, AuthFailed, ValidationFailed. Safe to retry."""
        code = self._require_code(code)
        # A cashier with a queue waits this long for a check, retries included (the campaign's
        # read timeout is for the money-moving calls, whose answer is worth waiting for).
        budget = float(getattr(settings, "LINA_CHECK_READ_TIMEOUT", 5.0))
        data = self._hashed("checkcode", {"code": code}, money_moving=False, code=code, read_budget=budget)
        info = parsing.lina_token_info(data, code=code)
        if not info.valid:  # code guessing is what LINA's DENIED exists for: it counts
            self._spend_budget("checkcode: token invalid")
        return info

    def redeem(self, code: str, amount: Decimal) -> RedeemResult:
        """POST redeem (hash, code, amount). Success only on ``resp: OK``. Never retried.
        Raises RedeemRefused/TokenInvalid, OutcomeUnknown, RateLimited, ProviderUnavailable,
        AuthFailed, ValidationFailed (amount unusable: nothing sent)."""
        code = self._require_code(code)
        form = {"code": code, "amount": _amount_text(amount)}
        data = self._hashed("redeem", form, money_moving=True, code=code)
        try:
            return parsing.lina_redeem_result(data, code=code, amount=amount)
        except (RedeemRefused, TokenInvalid) as refused:
            self._spend_budget(f"redeem: {refused.code}")
            raise

    def purchase(self, request: PurchaseRequest) -> PurchaseResult:
        """POST purchase (hash, amount, tokens, sendmail?, layout?, tokenfrom/tokenfor with a layout
        > 0). Never retried. Raises ValidationFailed (unknown template, layout not allowed),
        OutcomeUnknown, RateLimited, ProviderUnavailable, AuthFailed."""
        if not request.template_hash:
            raise ValidationFailed(_("No token template was given."))
        form = {"amount": _amount_text(request.amount), "tokens": request.template_hash}
        if request.email:
            form["sendmail"] = request.email
        if request.layout is not None:
            form["layout"] = str(int(request.layout))
            if request.layout > 0:  # names are only allowed with a layout (providers.md)
                if request.from_name:
                    form["tokenfrom"] = request.from_name
                if request.for_name:
                    form["tokenfor"] = request.for_name
        data = self._hashed("purchase", form, money_moving=True, code="")
        return parsing.lina_purchase_result(data, amount=request.amount)

    # --- Shared-cache reads a caller may do for the client ---------------------------------

    def shared_reads(self) -> list[str]:
        """The cache keys the next call reads before it sends anything: the session hash, the
        DENIED cool-down and the failed-call budget. A caller that reads the shared cache anyway
        (the desk's look-up throttle) fetches them in the same round trip and hands them over
        with :meth:`prime_shared_reads`."""
        return [session_key(self.config.campaign_id), self._cooldown_key(), *self._budget_keys()]

    def prime_shared_reads(self, found: dict[str, Any]) -> None:
        """Values of :meth:`shared_reads` just read (a key missing from ``found`` is not set)."""
        self._primed = {key: found.get(key) for key in self.shared_reads()}

    def _read_primed(self, keys: list[str]) -> dict[str, Any] | None:
        """The primed values of ``keys`` (present ones only), used up; None unless all are primed."""
        if not all(key in self._primed for key in keys):
            return None
        values = {key: self._primed.pop(key) for key in keys}
        return {key: value for key, value in values.items() if value is not None}

    # --- Session -------------------------------------------------------------------------

    def _fingerprint(self) -> str:
        """Changes when anything the login depends on changes, so new credentials log in anew."""
        c = self.config
        material = "\x1f".join(
            [c.base_url, c.username, c.password, c.shared_key, c.lina_hash_recipe, c.lina_login_user_field]
        )
        return hmac.new(settings.SECRET_KEY.encode(), material.encode(), hashlib.sha256).hexdigest()

    def _cached_session(self) -> dict | None:
        key = session_key(self.config.campaign_id)
        primed = self._read_primed([key])
        cached = primed.get(key) if primed is not None else self.cache.get(key)
        if (
            isinstance(cached, dict)
            and cached.get("fingerprint") == self._fingerprint()
            and cached.get("hash")
        ):
            return cached
        return None

    def _session_hash(self, rejected: str | None = None) -> str:
        """The shared session hash, logging in when there is none (or only the rejected one).

        A short cache lock lets one process log in while the others wait for its hash, so a
        burst of workers after an expiry costs one login, not one each.
        """
        cached = self._cached_session()
        if cached and cached["hash"] != rejected:
            return cached["hash"]
        lock = _login_lock_key(self.config.campaign_id)
        wait_for = self.config.connect_timeout + self.config.read_timeout
        have_lock = self.cache.add(lock, "1", timeout=int(wait_for) + 1)
        if not have_lock:
            deadline = time.monotonic() + wait_for
            while time.monotonic() < deadline and self.cache.get(lock) is not None:
                time.sleep(0.05)
            cached = self._cached_session()
            if cached and cached["hash"] != rejected:
                return cached["hash"]
        try:
            return self.login()
        finally:
            if have_lock:
                self.cache.delete(lock)

    def _hashed(
        self,
        operation: str,
        fields: dict[str, str],
        *,
        money_moving: bool,
        code: str,
        read_budget: float | None = None,
    ) -> dict:
        """A call that needs the session hash: on a session rejection (401, or 400/error with a
        session phrase) the dead hash is dropped, one fresh login made and the call repeated once.
        A rejected call was not applied, so the repeat is safe for redeem and purchase too."""
        secrets = (code, format_code(code)) if code else ()

        def post(session_hash: str) -> dict:
            fields_with_hash = {"hash": session_hash, **fields}
            return self._post(
                operation,
                fields_with_hash,
                money_moving=money_moving,
                secrets=(*secrets, session_hash),
                read_budget=read_budget,
            )

        session_hash = self._session_hash()
        try:
            return post(session_hash)
        except _HashRejected as first:
            logger.info(
                "LINA %s of campaign %s: session rejected (%s); logging in again once",
                operation,
                self.config.campaign_id,
                first.cause,
            )
            self._drop_session(session_hash)
        session_hash = self._session_hash(rejected=session_hash)
        try:
            return post(session_hash)
        except _HashRejected as second:
            self._drop_session(session_hash)
            logger.warning(
                "LINA %s of campaign %s: session rejected again right after a fresh login (%s)",
                operation,
                self.config.campaign_id,
                second.cause,
            )
            message = _("LINA rejected the session again right after a fresh login. Nothing was changed.")
            if second.reason:
                message = _(
                    "LINA rejected the session again right after a fresh login (%(reason)s). "
                    "Nothing was changed."
                ) % {"reason": second.reason}
            raise SessionRejected(
                message,
                what_to_check=[
                    _("Whether the portal's public IP address changes between calls (proxy or NAT pool)."),
                    _("Whether the API key in LINA (Gutscheine → API Zugriff) is active."),
                    _("The session rejection phrases in the campaign's LINA options."),
                ],
                status_code=second.status_code,
                detail=f"lina {operation}: session rejected twice ({second.cause})",
            ) from None

    def _drop_session(self, rejected_hash: str) -> None:
        """Forget the shared hash, unless another process has already replaced it."""
        cached = self._cached_session()
        if cached is None or cached.get("hash") == rejected_hash:
            self.cache.delete(session_key(self.config.campaign_id))

    # --- The shared budget of failed calls (per LINA account, see the module docstring) ------

    def _budget_keys(self) -> list[str]:
        limit, _window = failed_call_limit()
        return [budget_slot_key(self.config.base_url, self.config.username, n) for n in range(limit)]

    def _guard(self, *, budget: bool) -> None:
        """Refuse the call during a DENIED cool-down, or (``budget``) when the account's failed
        calls in the window reached the limit. One cache round trip for both: this runs before
        every call at the desk."""
        keys = [self._cooldown_key(), *(self._budget_keys() if budget else ())]
        found = self._read_primed(keys)
        if found is None:
            found = self.cache.get_many(keys)
        denied_until = found.pop(keys[0], None)
        if isinstance(denied_until, int | float) and denied_until > time.time():
            raise self._rate_limited(denied_until)
        limit, window = failed_call_limit()
        stamps = [v for v in found.values() if isinstance(v, int | float)]
        if budget and len(stamps) >= limit:
            retry_at = min(stamps) + window
            if retry_at > time.time():
                raise self._budget_spent(retry_at)

    def _spend_budget(self, why: str) -> None:
        """Count one failed call. Each slot is a cache key living exactly one window, so the
        count is a sliding window shared by every process without a lock (``add`` is atomic)."""
        _limit, window = failed_call_limit()
        now = time.time()
        try:
            for key in self._budget_keys():
                if self.cache.add(key, now, timeout=window):
                    break
        except ProviderUnavailable:  # the answer already came; the next call's guard fails closed
            logger.warning(
                "LINA failed call of campaign %s not counted: shared cache unreachable",
                self.config.campaign_id,
            )
            return
        logger.info("LINA failed call counted for campaign %s (%s)", self.config.campaign_id, why)

    def _budget_spent(self, retry_at: float) -> CallBudgetSpent:
        limit, window = failed_call_limit()
        when = datetime.fromtimestamp(retry_at, tz=UTC)
        return CallBudgetSpent(
            _(
                "%(count)d calls to LINA failed in the last %(seconds)d seconds (wrong codes or logins, "
                "from any till). The portal pauses calls so LINA does not lock the whole shop out. "
                "Nothing was changed. Try again after %(time)s."
            )
            % {"count": limit, "seconds": window, "time": timezone.localtime(when).strftime("%H:%M:%S")},
            retry_at=when,
            what_to_check=[
                _("Check the code for typing errors before scanning again."),
                _("If logins keep failing, check the campaign's credentials and login recipe."),
            ],
            detail=f"lina failed-call budget spent ({limit} per {window} s)",
        )

    # --- One request and its envelope -----------------------------------------------------

    def _cooldown_key(self) -> str:
        return cooldown_key(self.config.base_url, self.config.username)

    def _rate_limited(self, retry_at: float) -> RateLimited:
        when = datetime.fromtimestamp(retry_at, tz=UTC)
        return RateLimited(
            _("LINA is refusing calls after too many failed attempts. Try again after %(time)s.")
            % {"time": timezone.localtime(when).strftime("%H:%M")},
            retry_at=when,
            what_to_check=[
                _("Wait until the lock-out has passed: every call before then extends it."),
                _("If logins keep failing, check the campaign's credentials and login recipe."),
            ],
            detail="lina answered DENIED",
        )

    def _post(
        self,
        operation: str,
        form: dict[str, str],
        *,
        money_moving: bool,
        secrets: tuple[str, ...] = (),
        login_ip: str = "",
        read_budget: float | None = None,
    ) -> dict[str, Any]:
        self._guard(budget=operation != "ping")  # a ping cannot fail by what we send
        answer = self.transport.request(
            operation,
            "POST",
            operation,
            form=form,
            money_moving=money_moving,
            definite_statuses=DEFINITE_STATUSES,
            secrets=secrets,
            read_budget=read_budget,
        )
        return self._envelope(operation, answer, secrets, login_ip, money_moving)

    def _envelope(
        self, operation: str, answer: HttpAnswer, secrets, login_ip: str, money_moving: bool
    ) -> dict[str, Any]:
        """Map one answer to data (status OK) or an error; by HTTP status and ``status`` value.

        For money-moving calls the HTTP layer has already turned 5xx and non-JSON answers into
        OutcomeUnknown; an answer of the wrong shape becomes OutcomeUnknown here (via
        ``unusable_answer``), while DENIED, Maintenance, 401, 403 and ``status: error`` remain
        definite: LINA said it did not act."""

        def unusable(reason: str):
            return unusable_answer(
                answer, provider="lina", operation=operation, money_moving=money_moving, reason=reason
            )

        data = answer.data if answer.is_json else None
        status = ""
        if isinstance(data, dict):
            status = parsing.lenient(parsing.parse_enum, data.get("status")) or ""
        if status == "denied":
            seconds = int(getattr(settings, "LINA_DENIED_COOLDOWN_SECONDS", 300))
            retry_at = time.time() + seconds
            self.cache.set(self._cooldown_key(), retry_at, timeout=seconds)
            logger.warning("LINA answered DENIED to %s of campaign %s", operation, self.config.campaign_id)
            raise self._rate_limited(retry_at)
        if status in MAINTENANCE_STATUSES:
            raise ProviderMaintenance(
                _("LINA is in maintenance. Nothing was changed; try again later."),
                what_to_check=[_("Try again later; LINA announces maintenance windows to its customers.")],
                status_code=answer.status,
                detail=f"lina {operation}: HTTP {answer.status}, status {status}",
            )
        if operation in HASHED_OPERATIONS:
            rejected = self._session_rejection(answer, data, status, secrets)
            if rejected is not None:
                raise rejected
        if answer.status == 401:
            if operation in {"ping", "login"}:
                raise self._login_refused(answer, login_ip, operation)
            raise _HashRejected(f"HTTP 401 on {operation}", status_code=401)
        if answer.status == 403:
            raise AuthFailed(
                _("LINA refused access to this function."),
                what_to_check=[
                    _("Redeem and purchase need a special permission on the API key in LINA."),
                    _("Whether the API key in LINA (Gutscheine → API Zugriff) is active."),
                ],
                status_code=403,
                detail=f"lina {operation}: HTTP 403",
            )
        if 200 < answer.status < 300:  # a success of a kind LINA does not send: what did it do?
            raise unusable("unexpected success status")
        if answer.status not in (200, 400):  # reads only: 3xx/5xx on a money call never get here
            raise ProviderUnavailable(
                status_code=answer.status, detail=f"lina {operation}: HTTP {answer.status}"
            )
        if not isinstance(data, dict):
            if data is None:
                reason = "empty body" if answer.empty else "body is not JSON (a proxy's page?)"
            else:
                reason = "JSON but not an object"
            raise unusable(reason)
        if answer.status == 400 or status == "error":
            if operation == "login":
                raise self._login_refused(answer, login_ip, operation, data, secrets)
            self._spend_budget(f"{operation}: status error")
            raise self._validation_failed(operation, data, answer.status, secrets)
        if status != "ok":
            raise unusable(f"unknown status value {str(status)[:20]!r}")
        return data

    def _session_rejection(self, answer: HttpAnswer, data, status: str, secrets) -> _HashRejected | None:
        """The one place that decides "the session hash was rejected" for a hashed call."""
        text = ""
        if isinstance(data, dict):
            text = self._scrub(data.get("response") or data.get("msg"), secrets)
        if answer.status == 401:
            return _HashRejected(f"HTTP 401 {text!r}" if text else "HTTP 401", reason=text, status_code=401)
        if answer.status != 400 and status != "error":
            return None
        lowered = text.lower()
        phrases = self.config.lina_session_phrases or DEFAULT_SESSION_PHRASES
        matched = next((p for p in phrases if p and p.strip().lower() in lowered), None)
        if matched is None:
            return None
        return _HashRejected(
            f"HTTP {answer.status}, status {status or '-'}, {text!r} matches {matched.strip()!r}",
            reason=text,
            status_code=answer.status,
        )

    def _login_refused(
        self, answer: HttpAnswer, ip: str, operation: str = "login", data=None, secrets=()
    ) -> AuthFailed:
        self._spend_budget(f"{operation} refused")
        reason = self._scrub(data.get("response"), secrets) if isinstance(data, dict) else ""
        checks = [
            _("The API user name, password and shared key (LINA: Gutscheine → API Zugriff)."),
            _(
                "The login hash recipe in the campaign's LINA options (the connection test finds the one that works)."
            ),
            _("The login field names in the campaign's LINA options."),
        ]
        if ip:
            checks.append(_("Whether LINA accepts logins from the public IP address %(ip)s.") % {"ip": ip})
        return AuthFailed(
            _("LINA refused the login."),
            what_to_check=checks,
            status_code=answer.status,
            detail=f"lina {operation}: HTTP {answer.status}, refused {reason!r}",
        )

    def _validation_failed(self, operation, data: dict, status_code: int, secrets) -> ValidationFailed:
        reason = self._scrub(data.get("response") or data.get("msg"), secrets)
        checks = {
            "purchase": [
                _("The token template hash of the sale (tokens) as shown in the LINA backend."),
                _("Whether the chosen layout is assigned to that template in LINA."),
            ],
        }.get(operation, [_("The campaign's LINA settings; this may be a bug in the portal.")])
        message = (
            _("LINA rejected the request: %(reason)s") % {"reason": reason}
            if reason
            else _("LINA rejected the request as malformed.")
        )
        return ValidationFailed(
            message,
            what_to_check=checks,
            status_code=status_code,
            detail=f"lina {operation}: HTTP {status_code}, status error {reason!r}",
        )

    def _scrub(self, text: Any, secrets) -> str:
        """Provider text shown to staff: never a code, hash or credential, at most 200 characters."""
        if not isinstance(text, str):
            return ""
        return redact(text, (*secrets, self.config.password, self.config.shared_key), limit=200, mark="…")

    @staticmethod
    def _require_code(code: str) -> str:
        normalised = normalize_code(code)
        if not normalised:
            raise ValidationFailed(_("Enter a voucher code."))
        return normalised


def _amount_text(amount: Decimal) -> str:
    """The amount with a dot and exactly 2 decimals; more decimals are refused, never rounded."""
    try:
        value = Decimal(amount)
    except (TypeError, ValueError, ArithmeticError):
        raise ValidationFailed(_("The amount is not a number.")) from None
    if not value.is_finite() or value <= 0:
        raise ValidationFailed(_("The amount must be more than zero."))
    try:
        cents = value.quantize(Decimal("0.01"))
    except ArithmeticError:  # too large to have cents at all
        raise ValidationFailed(_("The amount is too large.")) from None
    if value != cents:
        raise ValidationFailed(_("The amount can have at most 2 decimals."))
    return f"{cents:.2f}"
