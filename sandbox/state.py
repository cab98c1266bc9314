"""The sandbox's own state: LINA accounts, tokens and sessions; Allsafe campaigns, vaults and
vouchers; injected faults; and the journal of money-moving calls.

Everything lives in one :class:`Store` guarded by ONE lock (``Store.lock``). Every handler that
reads and changes state does it inside ``with store.lock`` in one go, so concurrent requests
(e.g. twenty redeems of one token) are serialised exactly like a provider's database would
serialise them: the balance can never be overspent. Nothing sleeps while holding the lock.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from .formats import dot_amount, json_number

DEFAULT_RECIPE = "md5(md5(password)+ip+key)"
RECIPES = ("md5(md5(password)+ip+key)", "md5(password+ip+key)", "md5(ip+md5(password)+key)")
JOURNAL_LIMIT = 200_000


# --- LINA --------------------------------------------------------------------------------------


@dataclass
class Template:
    """A token template of the LINA backend, identified by its hash, with the layouts assigned to it."""

    name: str
    hash: str
    layouts: set[int] = field(default_factory=set)
    valid_days: int = 3 * 365
    full_value_only: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hash": self.hash,
            "layouts": sorted(self.layouts),
            "valid_days": self.valid_days,
            "full_value_only": self.full_value_only,
        }


@dataclass
class LinaAccount:
    """One API access (Gutscheine → API Zugriff) with the [assumed] options switchable per account."""

    username: str
    password: str
    shared_key: str
    recipe: str = DEFAULT_RECIPE
    user_field: str = "user"
    pass_field: str = "pass"  # noqa: S105 (a field name)
    fail_threshold: int = 5
    fail_window_seconds: float = 60.0
    lockout_seconds: float = 300.0
    denied_status: int = 200
    session_ttl_seconds: float = 3600.0
    # How sessions lapse (providers.md: not public; each is a switch). 0 uses: no limit.
    session_max_uses: int = 0
    session_ip_bound: bool = True
    templates: dict[str, Template] = field(default_factory=dict)  # by hash

    OPTIONS = (
        "password",
        "shared_key",
        "recipe",
        "user_field",
        "pass_field",
        "fail_threshold",
        "fail_window_seconds",
        "lockout_seconds",
        "denied_status",
        "session_ttl_seconds",
        "session_max_uses",
        "session_ip_bound",
    )

    def as_dict(self, now: float, count: FailureCount | None = None) -> dict[str, Any]:
        """``count``: the failures counted for this account's calls (its address, or itself)."""
        return {
            "username": self.username,
            "recipe": self.recipe,
            "user_field": self.user_field,
            "pass_field": self.pass_field,
            "fail_threshold": self.fail_threshold,
            "fail_window_seconds": self.fail_window_seconds,
            "lockout_seconds": self.lockout_seconds,
            "denied_status": self.denied_status,
            "session_ttl_seconds": self.session_ttl_seconds,
            "session_max_uses": self.session_max_uses,
            "session_ip_bound": self.session_ip_bound,
            "recent_failures": len(count.failures) if count else 0,
            "locked_for_seconds": round(max(0.0, count.locked_until - now), 1) if count else 0.0,
            "templates": [t.as_dict() for t in self.templates.values()],
        }


@dataclass
class Token:
    code: str  # normalised, 16 characters
    account: str
    original: Decimal
    remaining: Decimal
    valid_until: date
    full_value_only: bool = False
    blocked: bool = False
    template: str = ""
    layout: int | None = None
    from_name: str = ""
    for_name: str = ""
    email: str = ""
    layout_ref: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "account": self.account,
            "original": dot_amount(self.original),
            "remaining": dot_amount(self.remaining),
            "valid_until": self.valid_until.isoformat(),
            "full_value_only": self.full_value_only,
            "blocked": self.blocked,
            "template": self.template,
            "layout": self.layout,
            "from_name": self.from_name,
            "for_name": self.for_name,
            "email": self.email,
            "layout_ref": self.layout_ref,
            "created_at": self.created_at.isoformat(),
        }


@dataclass
class Session:
    hash: str
    account: str
    ip: str
    expires_at: float
    uses: int = 0


@dataclass
class FailureCount:
    """Failed calls from one calling address (LINA counts per address: every till of a shop)."""

    failures: deque = field(default_factory=deque)
    locked_until: float = 0.0

    def is_locked(self, now: float) -> bool:
        return now < self.locked_until

    def record(self, now: float, *, threshold: int, window: float, lockout: float) -> None:
        self.failures.append(now)
        while self.failures and self.failures[0] <= now - window:
            self.failures.popleft()
        if len(self.failures) >= threshold:
            self.locked_until = now + lockout
            self.failures.clear()


@dataclass
class SessionRejection:
    """How a rejected session hash is answered. Documented form (seed: "400 Error during
    request", ``status: error``, reason in ``response``) by default; 401 is the other form."""

    status: int = 400
    text: str = "Hash ungültig oder Sitzung abgelaufen"


# --- Allsafe -----------------------------------------------------------------------------------


@dataclass
class Voucher:
    pin: str
    serial: str
    expiry: date


@dataclass
class Vault:
    name: str
    brand: str = ""
    vouchers: dict[tuple[str, Decimal], list[Voucher]] = field(default_factory=dict)


@dataclass
class AllsafeCampaign:
    """A campaign's integration credentials and state; [assumed] call shapes switchable per campaign."""

    username: str
    password: str
    name: str = ""
    status: str = "live"  # pending, live, completed, archived
    integration_active: bool = True
    starts_on: date | None = None
    ends_on: date | None = None
    vaults: list[str] = field(default_factory=list)
    allocate_path: str = "/allocate"
    vendor_field: str = "vendor"
    value_field: str = "value"
    reference_field: str = "reference"
    availability_style: str = "plain"  # plain | wrapped | synonyms
    # Nothing left: "204" (documented: 204 is success, no body) or "list" (200 with []).
    availability_empty: str = "204"

    OPTIONS = (
        "password",
        "name",
        "status",
        "integration_active",
        "starts_on",
        "ends_on",
        "vaults",
        "allocate_path",
        "vendor_field",
        "value_field",
        "reference_field",
        "availability_style",
        "availability_empty",
    )

    def is_live(self, today: date) -> bool:
        """Allsafe's wiki: Live means status Live and inside the campaign's dates."""
        if self.status != "live":
            return False
        if self.starts_on and today < self.starts_on:
            return False
        return not (self.ends_on and today > self.ends_on)

    def as_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "name": self.name,
            "status": self.status,
            "integration_active": self.integration_active,
            "starts_on": self.starts_on.isoformat() if self.starts_on else None,
            "ends_on": self.ends_on.isoformat() if self.ends_on else None,
            "vaults": list(self.vaults),
            "allocate_path": self.allocate_path,
            "vendor_field": self.vendor_field,
            "value_field": self.value_field,
            "reference_field": self.reference_field,
            "availability_style": self.availability_style,
            "availability_empty": self.availability_empty,
        }


# --- Faults ------------------------------------------------------------------------------------

FAULT_KINDS = ("latency", "hang", "lost_answer", "http_500", "html_error", "malformed_json", "denied")
OPERATIONS = {
    "lina": ("ping", "login", "checkcode", "redeem", "purchase"),
    "allsafe": ("availability", "allocate"),
}


@dataclass
class Fault:
    """One injected fault. ``remaining`` None means permanent; otherwise the next N matching calls.

    latency: sleep ``ms`` before processing (stacks with other faults).
    hang: process the call, then sleep ``seconds`` before answering (past the client's timeout).
    lost_answer: process the call, then close the connection without sending anything.
    http_500 / html_error / malformed_json: answer that instead of processing (``apply`` true:
    process first, then answer that). denied: LINA's ``{"status": "DENIED"}`` without processing.
    """

    id: int
    provider: str
    operation: str  # an operation name or "*"
    kind: str
    remaining: int | None = 1
    ms: int = 0
    seconds: float = 30.0
    status: int | None = None
    apply: bool = False

    def matches(self, provider: str, operation: str) -> bool:
        return self.provider == provider and self.operation in ("*", operation)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "operation": self.operation,
            "kind": self.kind,
            "count": self.remaining,
            "permanent": self.remaining is None,
            "ms": self.ms,
            "seconds": self.seconds,
            "status": self.status,
            "apply": self.apply,
        }


@dataclass
class Maintenance:
    enabled: bool = False
    spelling: str = "Maintenance"  # providers.md: older docs spell it "Maintanance"


# --- The store ---------------------------------------------------------------------------------


class Store:
    """All sandbox state behind one lock. ``clock`` is monotonic seconds (replaceable in tests)."""

    def __init__(self, *, base_latency_ms: int = 0, lina_defaults: dict[str, Any] | None = None, clock=None):
        self.lock = threading.RLock()
        self.clock = clock or time.monotonic
        self.startup_latency_ms = base_latency_ms
        # Options applied to the demo LINA accounts (the CLI's --lina-fail-* flags).
        self.lina_defaults = dict(lina_defaults or {})
        self.reset()

    def reset(self) -> None:
        """Forget everything (accounts, tokens, sessions, stock, faults, journal)."""
        with self.lock:
            self.base_latency_ms = self.startup_latency_ms
            # Up to this many ms more, drawn per call: real providers' latency varies (load drills).
            self.latency_jitter_ms = 0
            self.lina_accounts: dict[str, LinaAccount] = {}
            self.lina_tokens: dict[str, Token] = {}
            self.lina_sessions: dict[str, Session] = {}
            self.lina_layout_refs: dict[str, str] = {}
            self.lina_maintenance = Maintenance()
            self.lina_seen_ip: str | None = None  # pretend the client's public IP is this
            self.lina_session_rejection = SessionRejection()
            # DENIED is counted per calling address (documented); "account" counts per account.
            self.lina_denied_scope = "address"
            self.lina_failure_counts: dict[str, FailureCount] = {}
            self.allsafe_campaigns: dict[str, AllsafeCampaign] = {}
            self.allsafe_vaults: dict[str, Vault] = {}
            self.allsafe_vendors: dict[str, str] = {}  # lower-case → canonical spelling
            self.faults: list[Fault] = []
            self.journal: deque[dict[str, Any]] = deque(maxlen=JOURNAL_LIMIT)
            # Every provider call that reached the server, per (provider, operation), faulted or
            # not: the journal only holds money-moving calls that were handled, so "how many times
            # did the client send this" (retries, no resend after a lost answer) is counted here.
            self.requests: Counter[tuple[str, str]] = Counter()
            self._sequence = 0
            self._fault_ids = 0
            self._serials = 0

    # --- helpers used under the lock --------------------------------------------------------
    def next_serial(self) -> int:
        with self.lock:
            self._serials += 1
            return self._serials

    def record(self, provider: str, operation: str, **fields: Any) -> dict[str, Any]:
        """Append one journal entry for a money-moving call (full codes are never journaled)."""
        with self.lock:
            self._sequence += 1
            entry = {
                "seq": self._sequence,
                "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "provider": provider,
                "operation": operation,
                **fields,
            }
            self.journal.append(entry)
            return entry

    def count_request(self, provider: str, operation: str) -> None:
        with self.lock:
            self.requests[(provider, operation)] += 1

    def request_rows(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"provider": provider, "operation": operation, "count": count}
                for (provider, operation), count in sorted(self.requests.items())
            ]

    def add_fault(self, **spec: Any) -> Fault:
        with self.lock:
            self._fault_ids += 1
            fault = Fault(id=self._fault_ids, **spec)
            self.faults.append(fault)
            return fault

    def clear_faults(self, provider: str | None = None, operation: str | None = None) -> int:
        with self.lock:
            keep = [
                f
                for f in self.faults
                if (provider and f.provider != provider) or (operation and f.operation != operation)
            ]
            removed = len(self.faults) - len(keep)
            self.faults = keep
            return removed

    def take_faults(self, provider: str, operation: str) -> tuple[int, Fault | None]:
        """The faults that hit this call: total added latency and at most one other fault.

        Counted faults are used up here, so N concurrent calls consume exactly N of them.
        """
        with self.lock:
            latency = self.base_latency_ms
            if self.latency_jitter_ms:
                latency += random.randint(0, self.latency_jitter_ms)  # noqa: S311 (simulated delay)
            action = None
            for fault in self.faults:
                if not fault.matches(provider, operation):
                    continue
                if fault.kind == "latency":
                    latency += fault.ms
                elif action is None:
                    action = fault
                else:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
            self.faults = [f for f in self.faults if f.remaining is None or f.remaining > 0]
            return latency, action

    def lina_count_for(self, account: LinaAccount, address: str | None = None) -> FailureCount | None:
        """The failure count that governs ``account``'s calls (from ``address``, when per address)."""
        with self.lock:
            if self.lina_denied_scope == "account":
                return self.lina_failure_counts.get(f"account:{account.username}")
            if address is None:  # the address of the caller (or the pretended one); worst if several
                counts = [c for k, c in self.lina_failure_counts.items() if k.startswith("address:")]
                return max(counts, key=lambda c: (c.locked_until, len(c.failures)), default=None)
            return self.lina_failure_counts.get(f"address:{address}")

    def new_session_hash(self) -> str:
        return secrets.token_hex(16)

    def stock_rows(self, campaign: AllsafeCampaign | None = None) -> list[dict[str, Any]]:
        """Stock per vault, vendor and value (all vaults, or the vaults linked to one campaign)."""
        with self.lock:
            names = campaign.vaults if campaign else list(self.allsafe_vaults)
            rows = []
            for name in names:
                vault = self.allsafe_vaults.get(name)
                if vault is None:
                    continue
                for (vendor, value), vouchers in sorted(vault.vouchers.items()):
                    rows.append(
                        {"vault": name, "vendor": vendor, "value": json_number(value), "count": len(vouchers)}
                    )
            return rows
