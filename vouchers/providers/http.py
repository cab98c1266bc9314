"""The HTTP layer both provider clients share: pooled sessions, timeouts, retries, outcome, logs.

One place turns every transport failure, and every answer to a money-moving call that is not a
definite one, into the error tree (ARCHITECTURE.md, "Provider errors"; the Sentry client base is
the model):

* connect timeout, refused connection, DNS failure → :class:`ProviderUnavailable`: the request
  provably never left, so nothing changed at the provider;
* read timeout, a connection dropped after sending, a broken body → :class:`OutcomeUnknown`: the
  provider may have acted. A plain ``requests.ConnectionError`` proves nothing, so the exception
  chain is searched for the urllib3/socket errors that can only happen before sending;
* an answer to a money-moving call (redeem, purchase, allocate) that is a 5xx (a proxy's 502/504
  may come after the provider was reached; a 500 may come after it acted), a 3xx, or a body that
  is not JSON (an HTML page, garbage, nothing) → :class:`OutcomeUnknown` as well, unless its
  status is one the provider documents as a definite answer by number (``definite_statuses``,
  e.g. Allsafe's 492). :func:`unusable_answer` is the one rule for "answered, but not usably":
  OutcomeUnknown for money-moving calls, :class:`UnexpectedAnswer` (unavailable) for reads; the
  provider modules use it for answers that are JSON but not of the expected shape.

Reads are retried a bounded number of times with exponential backoff and jitter; money-moving
calls never are. Each HTTP attempt writes one structured log line (provider, campaign,
operation, HTTP status, elapsed ms, outcome) and never a secret, session hash or full voucher
code: bodies are not logged, except a redacted excerpt of a body that is not JSON.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from http import cookiejar
from typing import Any

import requests
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from portal import server_timing

from ..security.redaction import redact
from .errors import Misconfigured, OutcomeUnknown, ProviderError, ProviderUnavailable, UnexpectedAnswer
from .parsing import FieldError, decode_json

logger = logging.getLogger("vouchers.providers")

#: Status codes after which a *read* is worth another attempt.
RETRY_STATUSES = frozenset({500, 502, 503, 504})
EXCERPT_CHARS = 200
_BACKOFF_CAP_SECONDS = 5.0


# --- One pooled session per process and base URL ----------------------------------------------


class _NoCookies(cookiejar.CookiePolicy):
    """Sessions are shared by every campaign on a base URL: a cookie must never cross campaigns."""

    netscape = True
    rfc2965 = hide_cookie2 = False

    def set_ok(self, cookie, request):
        return False

    def return_ok(self, cookie, request):
        return False

    def domain_return_ok(self, domain, request):
        return False

    def path_return_ok(self, path, request):
        return False


_sessions: dict[str, requests.Session] = {}
_sessions_pid: int | None = None
_sessions_lock = threading.Lock()


def session_for(base_url: str) -> requests.Session:
    """The process's pooled session for ``base_url`` (a forked worker starts its own pool)."""
    global _sessions_pid
    with _sessions_lock:
        if _sessions_pid != os.getpid():
            _sessions.clear()  # sockets inherited from the parent process must not be shared
            _sessions_pid = os.getpid()
        session = _sessions.get(base_url)
        if session is None:
            session = requests.Session()
            session.cookies.set_policy(_NoCookies())
            session.headers["User-Agent"] = "voucher-portal/1 (+requests)"
            # max_retries=0: urllib3 must never resend on its own; retries are decided here.
            # pool_maxsize: as many kept connections per host as this process runs calls at once
            # (the stock poll's thread pool, see pool_size()); with fewer, urllib3 opens extra
            # sockets and throws them away afterwards ("Connection pool is full").
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size(), max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            _environment_once(session, base_url)
            _sessions[base_url] = session
        return session


def pool_size() -> int:
    """Connections kept per host: PROVIDER_HTTP_POOL_SIZE, never fewer than the stock poll's
    concurrency (STOCK_POLL_CONCURRENCY threads of one process share one session)."""
    configured = int(getattr(settings, "PROVIDER_HTTP_POOL_SIZE", 32))
    return max(1, configured, int(getattr(settings, "STOCK_POLL_CONCURRENCY", 1)))


def _environment_once(session: requests.Session, base_url: str) -> None:
    """What requests would read from the environment on every call, read once per session.

    With ``trust_env`` on, each request scanned ``os.environ`` for proxies (and matched the host
    against ``NO_PROXY``) and looked for a CA bundle and a ``.netrc``: 0.25 ms of 0.29 ms of
    ``merge_environment_settings`` per call on the development machine. A session here serves one base URL, so one host: the
    proxies ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` give it, unless ``NO_PROXY`` names it,
    and ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` are read now and kept on the session. A change
    of these variables takes effect in a new process (a deploy restarts the workers). ``.netrc``
    is not read any more: provider credentials come from the campaign, never from a file.
    """
    session.trust_env = False
    session.proxies.update(get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle


# --- Outcome classification --------------------------------------------------------------------

# Errors that can only happen before a single byte of the request was sent.
_NOT_SENT = (NewConnectionError, ConnectTimeoutError, socket.gaierror, ConnectionRefusedError)


def never_sent(exc: BaseException) -> bool:
    """True when the exception chain proves the request did not leave this machine."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _NOT_SENT):
            return True
        stack.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
        stack.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return False


def transport_failure(exc: requests.exceptions.RequestException) -> tuple[type[ProviderError], str]:
    """What a failed request means: (error class, outcome for the log), by the module docstring."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ProviderUnavailable, "connect timeout"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return OutcomeUnknown, "read timeout"
    invalid_url = (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
    )
    if isinstance(exc, invalid_url):
        return Misconfigured, "invalid base URL"
    if isinstance(exc, requests.exceptions.SSLError):  # during the handshake, before the request is written
        return ProviderUnavailable, "TLS error"
    if isinstance(exc, requests.exceptions.ConnectionError):
        if never_sent(exc):
            return ProviderUnavailable, "could not connect"
        return OutcomeUnknown, "connection lost after sending"
    # A broken or undecodable body: the request was sent, the answer is lost.
    return OutcomeUnknown, "answer unreadable"


@dataclass(frozen=True)
class HttpAnswer:
    """What came back. ``data`` is the decoded JSON (``None`` when the body was empty or not JSON)."""

    status: int
    body: bytes
    data: Any
    is_json: bool
    elapsed_ms: float

    @property
    def empty(self) -> bool:
        return not self.body.strip()


# --- Answers that are not usable ----------------------------------------------------------------

MONEY_ANSWER_UNUSABLE = _(
    "The provider answered with an error instead of a result. It is not known whether the "
    "operation went through: it must be checked with the provider, never simply repeated."
)
MONEY_ANSWER_CHECKS = (
    _("Do not repeat the operation: check its outcome first (the ledger marks it as unknown)."),
    _("If it stays unknown, look the code or reference up in the provider's back office."),
)


def unusable_answer(
    answer: HttpAnswer,
    *,
    provider: str,
    operation: str,
    money_moving: bool,
    reason: str,
    message=None,
    what_to_check=(),
) -> ProviderError:
    """The error for an answer that arrived but cannot be used as a result.

    For a money-moving call the request reached something that answered, so the provider may
    have acted: :class:`OutcomeUnknown`, to be reconciled, never resent. For a read nothing can
    have changed: :class:`UnexpectedAnswer`, a kind of ProviderUnavailable (reads may be retried).
    ``reason`` goes to the log only; the staff message never shows the body.
    """
    detail = f"{provider} {operation}: HTTP {answer.status}, {reason}"
    if money_moving:
        return OutcomeUnknown(
            MONEY_ANSWER_UNUSABLE,
            what_to_check=MONEY_ANSWER_CHECKS,
            status_code=answer.status,
            detail=detail,
        )
    return UnexpectedAnswer(message, what_to_check=what_to_check, status_code=answer.status, detail=detail)


def money_answer_is_definite(answer: HttpAnswer, definite_statuses: Collection[int]) -> bool:
    """Whether an answer to a money-moving call can say what happened.

    Only a documented status (by number, whatever the body) or a JSON answer with a 2xx or 4xx
    status can. A 5xx may come from a proxy after the provider was reached, or from the provider
    after it acted; a redirect may follow a completed POST; an HTML page or garbage carries no
    result at all.
    """
    if answer.status in definite_statuses:
        return True
    return answer.is_json and (200 <= answer.status < 300 or 400 <= answer.status < 500)


class Transport:
    """Sends one provider's requests for one campaign.

    ``secrets`` are values that must never appear in a log excerpt (password, shared key); each
    call adds its own (the session hash, the voucher code).
    """

    def __init__(
        self,
        *,
        provider: str,
        campaign_id: int,
        base_url: str,
        connect_timeout: float,
        read_timeout: float,
        auth: tuple[str, str] | None = None,
        secrets: tuple[str, ...] = (),
        read_retries: int | None = None,
    ):
        self.provider = provider
        self.campaign_id = campaign_id
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.auth = auth
        self.secrets = tuple(s for s in secrets if s)
        if read_retries is None:  # the caller retries at its own layer when it says 0
            read_retries = int(getattr(settings, "PROVIDER_READ_RETRIES", 2))
        self.read_retries = max(0, read_retries)
        self.backoff = max(0.0, float(getattr(settings, "PROVIDER_RETRY_BACKOFF_SECONDS", 0.3)))

    @classmethod
    def for_client(cls, provider: str, config, *, auth=None, secrets: tuple[str, ...] = ()) -> Transport:
        """The transport of one provider client, from its campaign's ProviderConfig."""
        return cls(
            provider=provider,
            campaign_id=config.campaign_id,
            base_url=config.base_url,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            auth=auth,
            secrets=secrets,
            read_retries=getattr(config, "read_retries", None),
        )

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        json_body: Any = None,
        money_moving: bool,
        definite_statuses: Collection[int] = (),
        secrets: tuple[str, ...] = (),
        read_budget: float | None = None,
    ) -> HttpAnswer:
        """Send once (money-moving) or with bounded retries (reads).

        ``read_budget`` (reads only) caps the seconds spent waiting for answers over all attempts:
        each attempt's read timeout is what is left of it, and no attempt starts once it is spent
        (the desk's check: a cashier with a queue waits this long at most, retries included).

        Raises ProviderUnavailable / OutcomeUnknown for transport failures, and OutcomeUnknown
        for an answer to a money-moving call that is not definite (see
        :func:`money_answer_is_definite`; ``definite_statuses`` are the provider's documented
        error statuses). Any other answer is returned for the provider module to map.
        """
        attempts = 1 if money_moving else 1 + self.read_retries
        deadline = None if read_budget is None or money_moving else time.monotonic() + read_budget
        timeout = self.timeout
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            if deadline is not None:
                timeout = (self.timeout[0], max(0.05, min(self.timeout[1], deadline - time.monotonic())))
            try:
                answer = self._send(operation, method, path, form, json_body, secrets, attempt, timeout)
            except (ProviderUnavailable, OutcomeUnknown):
                if last:
                    raise
                self._sleep(attempt)
                if deadline is not None and time.monotonic() >= deadline - 0.05:
                    raise
                continue
            if money_moving and not money_answer_is_definite(answer, definite_statuses):
                reason = "a server error" if answer.status >= 500 else "no definite answer"
                if not answer.is_json:
                    reason += ", body is not JSON"
                raise unusable_answer(
                    answer, provider=self.provider, operation=operation, money_moving=True, reason=reason
                )
            if answer.status in RETRY_STATUSES and not last:
                self._sleep(attempt)
                continue
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt: int) -> None:
        if self.backoff <= 0:
            return
        delay = min(_BACKOFF_CAP_SECONDS, self.backoff * 2 ** (attempt - 1))
        time.sleep(delay + random.uniform(0, self.backoff))  # noqa: S311 (jitter, not crypto)

    def _send(self, operation, method, path, form, json_body, secrets, attempt, timeout=None) -> HttpAnswer:
        session = session_for(self.base_url)
        started = time.perf_counter()
        try:
            response = session.request(
                method,
                self.url(path),
                data=form,
                json=json_body,
                auth=self.auth,
                timeout=timeout or self.timeout,
                # Never follow a redirect: requests strips the Authorization header when the
                # host changes, but a 307/308 resends the body (the LINA login) to any address.
                allow_redirects=False,
            )
        except requests.exceptions.RequestException as exc:
            error_class, outcome = transport_failure(exc)
            raise self._failed(operation, started, attempt, error_class, outcome, exc) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        server_timing.add("provider", elapsed_ms)
        body = response.content or b""
        data, is_json, excerpt = None, False, ""
        if body.strip():
            try:
                data, is_json = decode_json(body), True
            except FieldError:
                excerpt = self.excerpt(body, secrets)
        answer = HttpAnswer(response.status_code, body, data, is_json, elapsed_ms)
        if 300 <= answer.status < 400:
            from .endpoints import display_host

            # Handled like any other unusable answer; the log says where it pointed (host only).
            target = response.headers.get("Location", "")
            excerpt = f"redirect to {display_host(target) if target else '?'} not followed"
        self._log(
            logging.INFO if is_json or not body.strip() else logging.WARNING,
            operation,
            answer.status,
            elapsed_ms,
            "answered" if is_json or not body.strip() else "not-json",
            attempt,
            excerpt,
        )
        return answer

    def _failed(self, operation, started, attempt, error_class, outcome, exc):
        elapsed_ms = (time.perf_counter() - started) * 1000
        server_timing.add("provider", elapsed_ms)
        self._log(logging.WARNING, operation, None, elapsed_ms, outcome, attempt, type(exc).__name__)
        if error_class is Misconfigured:
            return Misconfigured(
                what_to_check=[_("The campaign's base URL (it must start with https:// or http://).")],
                detail=outcome,
            )
        return error_class(detail=f"{self.provider} {operation}: {outcome} ({type(exc).__name__})")

    def excerpt(self, body: bytes, secrets: tuple[str, ...] = ()) -> str:
        """At most EXCERPT_CHARS of a body, with every known secret and code-like value removed."""
        text = body[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
        return redact(text, (*self.secrets, *secrets), limit=EXCERPT_CHARS)

    def _log(self, level, operation, status, elapsed_ms, outcome, attempt, note=""):
        logger.log(
            level,
            "provider call provider=%s campaign=%s operation=%s status=%s elapsed_ms=%.1f outcome=%s attempt=%d%s",
            self.provider,
            self.campaign_id,
            operation,
            status if status is not None else "-",
            elapsed_ms,
            outcome,
            attempt,
            f" note={note!r}" if note else "",
            extra={
                "provider": self.provider,
                "campaign_id": self.campaign_id,
                "operation": operation,
                "http_status": status,
                "elapsed_ms": round(elapsed_ms, 1),
                "outcome": outcome,
                "attempt": attempt,
            },
        )
