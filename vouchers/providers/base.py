"""The provider interface: configuration, request and result dataclasses.

Providers are pure adapters (ARCHITECTURE.md, layer rule 3): they never import models, touch the
database or enqueue tasks. Services build a :class:`ProviderConfig` from a campaign and call a
client; clients turn these dataclasses into one vendor's HTTP and back. Money is ``Decimal``,
dates are ``date``, and every result keeps the provider's raw answer.

Outcome rule for the money-moving operations (redeem, purchase, allocate): only a readable answer
or a status the provider documents as a definite "no" says what happened. Everything else that
came back after the request was sent — a read timeout, a dropped connection, any 5xx (a proxy's
502/504 may follow a forwarded request, a 500 may follow a completed one), an HTML page, a body
that is not JSON or not of the expected shape — is OutcomeUnknown: to be reconciled, never sent
again. Reads map the same answers to ProviderUnavailable and may be retried (providers/http.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ProviderConfig:
    """Everything a client needs about one campaign. Secrets are kept out of ``repr``."""

    campaign_id: int
    provider: str  # "lina" or "allsafe"
    base_url: str
    username: str = ""
    password: str = field(default="", repr=False)
    shared_key: str = field(default="", repr=False)
    connect_timeout: float = 3.05
    read_timeout: float = 15.0
    #: Retries of a read after a transport error or 5xx; None: PROVIDER_READ_RETRIES. The stock
    #: poll sets 0: it retries at its task layer instead (vouchers/tasks/stock.py).
    read_retries: int | None = None
    # LINA [assumed] options (providers.md)
    lina_hash_recipe: str = "md5(md5(password)+ip+key)"
    lina_login_user_field: str = "user"
    lina_login_pass_field: str = "pass"  # noqa: S105 (a field name, not a password)
    #: Phrases (lower case) in a 400 / ``status: error`` text that mean "session rejected".
    lina_session_phrases: tuple[str, ...] = ()
    # Allsafe [assumed] options (providers.md)
    allsafe_allocate_path: str = "/allocate"
    allsafe_vendor_field: str = "vendor"
    allsafe_value_field: str = "value"
    allsafe_reference_field: str = "reference"


# --- LINA --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PingResult:
    ok: bool
    ip: str
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenInfo:
    """The answer to ``checkcode``. ``valid`` is the provider's Valid/Invalid."""

    code: str  # normalised
    display_code: str
    valid: bool
    original_value: Decimal | None
    remaining_value: Decimal | None
    valid_until: date | None
    full_value_only: bool  # tokencomplete = 1: only the whole remaining value at once
    message: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RedeemResult:
    code: str
    amount: Decimal
    balance_before: Decimal | None  # amount_old
    balance_after: Decimal | None  # amount_new
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PurchaseRequest:
    amount: Decimal
    template_hash: str
    email: str = ""
    layout: int | None = None
    from_name: str = ""  # sent only with a layout
    for_name: str = ""


@dataclass(frozen=True)
class PurchaseResult:
    code: str
    amount: Decimal
    qrcode_png_base64: str = ""
    layout_url: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


# --- Allsafe -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockItem:
    vendor: str
    value: Decimal
    remaining: int
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Availability:
    items: tuple[StockItem, ...]
    raw: Any = None
    #: Allsafe answered 204: success with nothing to list, so every voucher type is at 0.
    nothing_left: bool = False


@dataclass(frozen=True)
class AllocateRequest:
    vendor: str
    value: Decimal
    reference: str  # the portal's own id for this request


@dataclass(frozen=True)
class AllocatedVoucher:
    vendor: str
    value: Decimal | None
    code: str  # pin or code, whichever the provider sent
    serial: str = ""
    expiry: date | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # every field received, for display
    raw: Any = None


# --- Interfaces --------------------------------------------------------------------------------


@runtime_checkable
class LinaProvider(Protocol):
    def ping(self) -> PingResult:
        """POST ping (no hash). Returns the public IP the provider sees.
        Raises ProviderUnavailable (also on Maintenance). Safe to retry."""

    def check(self, code: str) -> TokenInfo:
        """POST checkcode (hash, code). Logs in first if no session hash is cached.
        Raises ProviderUnavailable (also 5xx, HTML or unreadable answers, after bounded retries),
        OutcomeUnknown (the last attempt timed out or lost its answer; a read changes nothing),
        RateLimited, AuthFailed, ValidationFailed. Safe to retry."""

    def redeem(self, code: str, amount: Decimal) -> RedeemResult:
        """POST redeem (hash, code, amount with at most 2 decimals). Success only on resp OK.
        Raises RedeemRefused / TokenInvalid (a definite no); OutcomeUnknown (read timeout, answer
        lost, any 5xx, an HTML or unreadable body: LINA may have acted, reconcile); RateLimited
        (DENIED); ProviderUnavailable (not sent, or Maintenance: nothing changed); AuthFailed;
        ValidationFailed. Never retried (a 401 costs one login and one repeat: LINA did not act)."""

    def purchase(self, request: PurchaseRequest) -> PurchaseResult:
        """POST purchase (hash, amount, tokens, sendmail?, layout?, tokenfrom/tokenfor with a layout).
        Raises Rejected, ValidationFailed (HTTP 400: unknown template, layout not allowed);
        OutcomeUnknown (read timeout, answer lost, any 5xx, an HTML or unreadable body, OK without
        a code: a token may exist, reconcile); RateLimited; ProviderUnavailable (not sent, or
        Maintenance); AuthFailed. Never retried."""


@runtime_checkable
class AllsafeProvider(Protocol):
    def availability(self) -> Availability:
        """GET /availability with Basic auth; 204 means an empty list.
        Raises AuthFailed (401), Misconfigured (491), ProviderUnavailable (also 5xx, HTML or
        unreadable answers, after bounded retries), OutcomeUnknown (the last attempt timed out or
        lost its answer; a read changes nothing). Safe to retry."""

    def allocate(self, request: AllocateRequest) -> AllocatedVoucher:
        """POST <allocate path> with JSON {vendor, value, reference} (names are settings).
        Raises OutOfStock (492), InvalidVendor (496), ValidationFailed (495), AuthFailed (401),
        Misconfigured (491): definite by number, whatever the body. OutcomeUnknown: read timeout,
        answer lost, any 5xx, a redirect, an HTML or unreadable body, a success without a voucher
        (a voucher may have been handed out: review, never resend). ProviderUnavailable: not sent,
        or another 4xx with a JSON body (Allsafe refused). Never retried."""
