"""A fake provider that stands in for LINA and Allsafe in service and view tests.

It keeps tokens and stock in memory, counts calls, and can be told to fail the next call of an
operation with any provider error (``fail_next``), or to apply an operation and then lose the
answer (``lose_answer_next``: the money moved, the caller gets OutcomeUnknown), as the real
providers can, or to return a scripted (possibly broken) answer to a read (``answer_next``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import pytest

from vouchers.providers import base
from vouchers.providers.errors import (
    InvalidVendor,
    OutcomeUnknown,
    OutOfStock,
    ProviderError,
    RedeemRefused,
    TokenInvalid,
)
from vouchers.values.codes import format_code, normalize_code


@dataclass
class FakeToken:
    code: str
    original: Decimal
    remaining: Decimal
    valid_until: date | None = None
    full_value_only: bool = False
    valid: bool = True


@dataclass
class FakeProvider:
    """Implements both LinaProvider and AllsafeProvider over in-memory state (thread-safe)."""

    tokens: dict[str, FakeToken] = field(default_factory=dict)
    stock: dict[tuple[str, Decimal], int] = field(default_factory=dict)
    calls: Counter = field(default_factory=Counter)
    sold: list[base.PurchaseResult] = field(default_factory=list)
    allocated: list[base.AllocatedVoucher] = field(default_factory=list)
    ip: str = "203.0.113.7"
    #: What purchase/allocate were asked, in call order (to check what was sent, e.g. names).
    requests: list = field(default_factory=list)
    #: Base64 PNG the fake's purchase answers with ("" = none, as LINA may send).
    purchase_qrcode: str = ""
    _delays: dict[str, float] = field(default_factory=dict)
    _failures: dict[str, list[ProviderError]] = field(default_factory=lambda: defaultdict(list))
    _lose: Counter = field(default_factory=Counter)
    _answers: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    _during: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count_lock: threading.Lock = field(default_factory=threading.Lock)
    _serial: int = 0

    # --- Set-up helpers -------------------------------------------------------------------
    def add_token(self, code: str, value: str | Decimal, *, remaining=None, **kwargs) -> FakeToken:
        code = normalize_code(code)
        value = Decimal(str(value))
        kwargs.setdefault("valid_until", date.today() + timedelta(days=365))
        token = FakeToken(code, value, Decimal(str(remaining)) if remaining is not None else value, **kwargs)
        self.tokens[code] = token
        return token

    def set_stock(self, vendor: str, value, remaining: int) -> None:
        self.stock[(vendor, Decimal(str(value)))] = remaining

    def fail_next(self, operation: str, error: ProviderError) -> None:
        """The next call of ``operation`` raises ``error`` without changing anything."""
        self._failures[operation].append(error)

    def lose_answer_next(self, operation: str) -> None:
        """The next call of ``operation`` is applied, then the answer is lost (OutcomeUnknown)."""
        self._lose[operation] += 1

    def answer_next(self, operation: str, answer) -> None:
        """The next call of a read (``availability``) returns ``answer`` as it is, however broken:
        for testing how services treat answers a real client might let through."""
        self._answers[operation].append(answer)

    def during(self, operation: str, hook) -> None:
        """Run ``hook(code=..., amount=...)`` inside every call of ``operation`` (redeem, check).

        The hook runs after the fake has read the token and before it answers or changes it, with
        the fake's own lock released, so it can call back into the portal (a second till) or
        sleep to widen a race window. A redeem with a hook is therefore a read-modify-write
        without a lock on the provider side: concurrent calls can overspend, which is what the
        portal's own per-code lock must prevent. ``during(operation, None)`` removes the hook.
        """
        if hook is None:
            self._during.pop(operation, None)
        else:
            self._during[operation] = hook

    def slow_down(self, operation: str, seconds: float) -> None:
        """Every call of ``operation`` takes ``seconds`` before it answers (progress bars, races)."""
        self._delays[operation] = seconds

    def _enter(self, operation: str) -> bool:
        """Count the call, raise an injected failure; True when the answer should be lost."""
        with self._count_lock:
            self.calls[operation] += 1
        if self._failures[operation]:
            raise self._failures[operation].pop(0)
        if self._lose[operation]:
            self._lose[operation] -= 1
            return True
        return False

    # --- LINA -----------------------------------------------------------------------------
    def ping(self) -> base.PingResult:
        self._enter("ping")
        return base.PingResult(ok=True, ip=self.ip, raw={"status": "OK", "myip": self.ip})

    def check(self, code: str) -> base.TokenInfo:
        hook = self._during.get("check")
        if hook is not None:
            hook(code=normalize_code(code), amount=None)
        with self._lock:
            self._enter("check")
            token = self.tokens.get(normalize_code(code))
            if token is None:
                return base.TokenInfo(
                    code=normalize_code(code),
                    display_code=format_code(code),
                    valid=False,
                    original_value=None,
                    remaining_value=None,
                    valid_until=None,
                    full_value_only=False,
                    message="Token unbekannt",
                    raw={"status": "OK", "token": "Invalid"},
                )
            return base.TokenInfo(
                code=token.code,
                display_code=format_code(token.code),
                valid=token.valid and token.remaining > 0,
                original_value=token.original,
                remaining_value=token.remaining,
                valid_until=token.valid_until,
                full_value_only=token.full_value_only,
                raw={"status": "OK", "token": "Valid", "restwert": str(token.remaining)},
            )

    def redeem(self, code: str, amount: Decimal) -> base.RedeemResult:
        with self._lock:
            lose = self._enter("redeem")
            token = self.tokens.get(normalize_code(code))
            if token is None or not token.valid:
                raise TokenInvalid()
            if amount > token.remaining:
                raise RedeemRefused("Betrag übersteigt Restwert")
            if token.full_value_only and amount != token.remaining:
                raise RedeemRefused("Nur vollständige Einlösung möglich")
            before = token.remaining
            hook = self._during.get("redeem")
            if hook is None:
                return self._apply_redeem(token, before, amount, lose)
        hook(code=token.code, amount=amount)
        with self._lock:
            return self._apply_redeem(token, before, amount, lose)

    def _apply_redeem(
        self, token: FakeToken, before: Decimal, amount: Decimal, lose: bool
    ) -> base.RedeemResult:
        token.remaining = before - amount
        if lose:
            raise OutcomeUnknown()
        return base.RedeemResult(
            code=token.code,
            amount=amount,
            balance_before=before,
            balance_after=token.remaining,
            raw={
                "status": "OK",
                "resp": "OK",
                "amount_old": str(before),
                "amount_new": str(token.remaining),
            },
        )

    def purchase(self, request: base.PurchaseRequest) -> base.PurchaseResult:
        if self._delays.get("purchase"):
            time.sleep(self._delays["purchase"])  # outside the lock, like a slow network
        with self._lock:
            self.requests.append(("purchase", request))
            lose = self._enter("purchase")
            self._serial += 1
            code = f"FAKE{self._serial:012d}"
            self.add_token(code, request.amount)
            result = base.PurchaseResult(
                code=code,
                amount=request.amount,
                qrcode_png_base64=self.purchase_qrcode,
                layout_url=f"https://lina.example.test/layout/{code}" if request.layout else "",
                raw={"status": "OK", "code": code, "amount": str(request.amount)},
            )
            self.sold.append(result)
            if lose:
                raise OutcomeUnknown()
            return result

    # --- Allsafe --------------------------------------------------------------------------
    def availability(self) -> base.Availability:
        with self._lock:
            self._enter("availability")
            if self._answers["availability"]:
                return self._answers["availability"].pop(0)
            items = tuple(
                base.StockItem(
                    vendor=v, value=value, remaining=n, raw={"vendor": v, "value": str(value), "remaining": n}
                )
                for (v, value), n in sorted(self.stock.items())
            )
            return base.Availability(items=items, raw=[dict(i.raw) for i in items])

    def allocate(self, request: base.AllocateRequest) -> base.AllocatedVoucher:
        with self._lock:
            self.requests.append(("allocate", request))
            lose = self._enter("allocate")
            vendors = {v for v, _ in self.stock}
            if request.vendor not in vendors:
                raise InvalidVendor(status_code=496)
            key = (request.vendor, Decimal(str(request.value)))
            if self.stock.get(key, 0) <= 0:
                raise OutOfStock(status_code=492)
            self.stock[key] -= 1
            self._serial += 1
            fields = {
                "pin": f"PIN{self._serial:09d}",
                "serial": f"S{self._serial:06d}",
                "vendor": request.vendor,
                "value": str(request.value),
                "reference": request.reference,
            }
            voucher = base.AllocatedVoucher(
                vendor=request.vendor,
                value=Decimal(str(request.value)),
                code=fields["pin"],
                serial=fields["serial"],
                fields=fields,
                raw=fields,
            )
            self.allocated.append(voucher)
            if lose:
                raise OutcomeUnknown()
            return voucher


@pytest.fixture
def fake_provider(monkeypatch):
    """Every campaign's client is this one fake (see vouchers.services.providers.client_factory)."""
    fake = FakeProvider()
    monkeypatch.setattr("vouchers.services.providers.client_factory", lambda config: fake)
    return fake
