"""Nothing lost, nothing done twice: the portal's ledger against the sandbox's own record.

The sandbox journals every money-moving call it handled (``GET /_sandbox/journal``): LINA
redeems (masked code, amount, applied or not), LINA purchases (the new token's masked code,
amount) and Allsafe allocations (the portal's reference, which is the operation's request
token). :func:`check` compares that with the ledger (``ProviderOperation`` rows, with their
sales and bulk rows) and the sandbox's token balances. It is a pure function of plain records,
so tests can feed it a constructed ledger; :func:`collect_ledger` and :func:`collect_sandbox`
read the real ones.

Definitions (per redeem code, per purchase code, per allocate reference):

- **applied**: the sandbox applied it (money moved).
- **succeeded**: the ledger says succeeded; **unknown-resolved**: it was unknown at first and the
  reconcile (or a person) settled it (``resolved_at`` set); **unknown-open**: still pending,
  unknown or needs review: visible to a person on the review page, not lost.
- **lost**: applied, but the ledger has no open or succeeded operation for it (it says failed,
  or has nothing).
- **duplicated**: applied more often than the portal sent it (one request token, two
  applications), or one allocate reference applied twice.
- **phantom**: the ledger says succeeded but the sandbox never applied it.
- **balance mismatch**: a token's sandbox balance is not original - the succeeded redeems
  (checked for codes without open redeems only).
- **reused tokens**: a request token on two operations, or a bulk row whose sale carries
  another token.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

OPEN = ("pending", "unknown", "needs_review")
# Redeem attempts the portal refused itself before any call (services/tokens.py): never sent.
NOT_SENT_ERRORS = ("CodeBusy", "BalanceChanged")


@dataclass(frozen=True)
class LedgerOp:
    id: int
    kind: str  # redeem | purchase | allocate
    state: str
    code_masked: str = ""
    amount: Decimal | None = None
    request_token: str | None = None
    resolved: bool = False  # was unknown/needs review, then settled (resolved_at set)
    error_code: str = ""

    @property
    def sent(self) -> bool:
        return not (self.state == "failed" and self.error_code in NOT_SENT_ERRORS)


@dataclass(frozen=True)
class Applied:
    """One journal entry of the sandbox with ``applied: true``."""

    operation: str  # redeem | purchase | allocate
    code_masked: str = ""
    amount: Decimal | None = None
    reference: str = ""


@dataclass(frozen=True)
class Balance:
    code_masked: str
    original: Decimal
    remaining: Decimal


@dataclass(frozen=True)
class BulkRow:
    row_token: str
    sale_token: str | None  # the request token of the row's sale's operation, None: not sold


@dataclass
class Report:
    applied: int = 0
    succeeded: int = 0
    failed: int = 0
    unknown_resolved: int = 0
    unknown_open: int = 0
    lost: int = 0
    duplicated: int = 0
    phantom: int = 0
    balance_mismatches: int = 0
    reused_tokens: int = 0
    per_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.lost or self.duplicated or self.phantom or self.balance_mismatches or self.reused_tokens
        )

    def add(self, kind: str, name: str, n: int = 1) -> None:
        if not n:
            return
        setattr(self, name, getattr(self, name) + n)
        bucket = self.per_kind.setdefault(kind, {})
        bucket[name] = bucket.get(name, 0) + n

    def lines(self) -> list[str]:
        out = [
            "invariants: "
            + ("OK" if self.ok else "VIOLATED")
            + f" — applied {self.applied}, succeeded {self.succeeded}, failed {self.failed}, "
            f"unknown→resolved {self.unknown_resolved}, unknown-open {self.unknown_open}, "
            f"lost {self.lost}, duplicated {self.duplicated}, phantom {self.phantom}, "
            f"balance mismatches {self.balance_mismatches}, reused tokens {self.reused_tokens}"
        ]
        for kind, counts in sorted(self.per_kind.items()):
            out.append(f"  {kind:<9} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        out += [f"  ! {p}" for p in self.problems[:20]]
        return out


def _tally_states(report: Report, kind: str, ops: list[LedgerOp]) -> None:
    for op in ops:
        if op.state == "succeeded":
            report.add(kind, "succeeded")
            if op.resolved:
                report.add(kind, "unknown_resolved")
        elif op.state == "failed":
            report.add(kind, "failed")
        elif op.state in OPEN:
            report.add(kind, "unknown_open")


def _by_count(
    report: Report, kind: str, key: str, applied: int, ops: list[LedgerOp], *, one_per_op: bool
) -> None:
    """Match ``applied`` applications of one code/reference against that code's operations."""
    succeeded = sum(op.state == "succeeded" for op in ops)
    open_ = sum(op.state in OPEN for op in ops)
    sent = sum(op.sent for op in ops)
    if succeeded > applied:
        report.add(kind, "phantom", succeeded - applied)
        report.problems.append(f"{kind} {key}: ledger has {succeeded} succeeded, sandbox applied {applied}")
    if one_per_op and applied > sent:
        report.add(kind, "duplicated", applied - sent)
        report.problems.append(f"{kind} {key}: applied {applied} times for {sent} attempts sent")
    unaccounted = min(applied, sent if one_per_op else applied) - succeeded - open_
    if unaccounted > 0:
        report.add(kind, "lost", unaccounted)
        report.problems.append(
            f"{kind} {key}: applied {applied}, ledger succeeded {succeeded} + open {open_}: {unaccounted} lost"
        )


def check(
    *,
    ledger: list[LedgerOp],
    applied: list[Applied],
    balances: list[Balance] = (),
    bulk_rows: list[BulkRow] = (),
) -> Report:
    report = Report()
    ops_by_kind: dict[str, list[LedgerOp]] = defaultdict(list)
    for op in ledger:
        ops_by_kind[op.kind].append(op)
    for kind in ("redeem", "purchase", "allocate"):
        _tally_states(report, kind, ops_by_kind[kind])
    for entry in applied:
        report.add(entry.operation, "applied")

    # Request tokens: one operation each, and a bulk row's sale carries the row's own token.
    tokens = Counter(op.request_token for op in ledger if op.request_token)
    for token, n in tokens.items():
        if n > 1:
            report.add("tokens", "reused_tokens", n - 1)
            report.problems.append(f"request token …{token[-6:]} on {n} operations")
    for row in bulk_rows:
        if row.sale_token is not None and row.sale_token != row.row_token:
            report.add("tokens", "reused_tokens")
            report.problems.append(f"bulk row …{row.row_token[-6:]} sold under another request token")

    # Redeems, per masked code: each sent attempt may account for at most one application.
    redeem_ops: dict[str, list[LedgerOp]] = defaultdict(list)
    for op in ops_by_kind["redeem"]:
        redeem_ops[op.code_masked].append(op)
    redeem_applied = Counter(e.code_masked for e in applied if e.operation == "redeem")
    for code in sorted(set(redeem_ops) | set(redeem_applied)):
        _by_count(report, "redeem", code, redeem_applied[code], redeem_ops[code], one_per_op=True)

    # Balances: original - succeeded redeems, where no redeem of the code is still open.
    for balance in balances:
        ops = redeem_ops.get(balance.code_masked, [])
        if any(op.state in OPEN for op in ops):
            continue
        spent = sum((op.amount or Decimal(0)) for op in ops if op.state == "succeeded")
        if balance.original - spent != balance.remaining:
            report.add("redeem", "balance_mismatches")
            report.problems.append(
                f"token {balance.code_masked}: sandbox {balance.remaining}, ledger says "
                f"{balance.original} - {spent} = {balance.original - spent}"
            )

    # Purchases: a success knows the new code; an open one does not (the answer was lost), so
    # applications no success claims are matched against the open purchases by count.
    purchase_ops = ops_by_kind["purchase"]
    succeeded_codes = Counter(op.code_masked for op in purchase_ops if op.state == "succeeded")
    applied_codes = Counter(e.code_masked for e in applied if e.operation == "purchase")
    for code, n in (succeeded_codes - applied_codes).items():
        report.add("purchase", "phantom", n)
        report.problems.append(f"purchase {code}: ledger success the sandbox never applied")
    unclaimed = sum((applied_codes - succeeded_codes).values())
    open_purchases = sum(op.state in OPEN for op in purchase_ops)
    sent_purchases = sum(op.sent for op in purchase_ops)
    if sum(applied_codes.values()) > sent_purchases:
        extra = sum(applied_codes.values()) - sent_purchases
        report.add("purchase", "duplicated", extra)
        report.problems.append(f"purchase: {extra} more applications than purchases sent")
        unclaimed -= extra
    if unclaimed > open_purchases:
        report.add("purchase", "lost", unclaimed - open_purchases)
        report.problems.append(
            f"purchase: {unclaimed} applied without a ledger success, only {open_purchases} open"
        )

    # Allocations: the reference is the operation's request token; exact matching.
    allocate_ops = {op.request_token: op for op in ops_by_kind["allocate"] if op.request_token}
    references = Counter(e.reference for e in applied if e.operation == "allocate")
    for reference, n in references.items():
        op = allocate_ops.get(reference)
        if n > 1:
            report.add("allocate", "duplicated", n - 1)
            report.problems.append(f"allocate …{reference[-6:]} applied {n} times")
        if op is None or op.state == "failed":
            report.add("allocate", "lost")
            report.problems.append(
                f"allocate …{reference[-6:]} applied, ledger: {op.state if op else 'none'}"
            )
    for reference, op in allocate_ops.items():
        if op.state == "succeeded" and reference not in references:
            report.add("allocate", "phantom")
            report.problems.append(f"allocate …{reference[-6:]}: ledger success the sandbox never applied")
    return report


# --- Reading the real records -----------------------------------------------------------------


def collect_ledger(campaign_slugs: tuple[str, ...] = ("drill-lina", "drill-allsafe")):
    """(ledger, bulk rows) of the drill campaigns, from the portal's database (Django set up)."""
    from vouchers.models import BulkSaleRow, ProviderOperation

    rows = ProviderOperation.objects.filter(
        campaign__slug__in=campaign_slugs, kind__in=["redeem", "purchase", "allocate"]
    ).values_list(
        "id", "kind", "state", "code_masked", "amount", "request_token", "resolved_at", "error_code"
    )
    ledger = [
        LedgerOp(
            id=pk,
            kind=kind,
            state=state,
            code_masked=masked,
            amount=amount,
            request_token=token,
            resolved=resolved_at is not None,
            error_code=error_code,
        )
        for pk, kind, state, masked, amount, token, resolved_at, error_code in rows
    ]
    bulk = [
        BulkRow(row_token=token, sale_token=sale_token)
        for token, sale_token in BulkSaleRow.objects.filter(
            bulk_sale__campaign__slug__in=campaign_slugs
        ).values_list("request_token", "sale__operation__request_token")
    ]
    return ledger, bulk


def collect_sandbox(control, *, code_prefix: str = "DR"):
    """(applied entries, balances of the drill tokens) from the sandbox's control API."""
    applied = []
    for entry in control("GET", "journal", applied="1"):
        amount = entry.get("amount")
        applied.append(
            Applied(
                operation=entry["operation"],
                code_masked=entry.get("code_masked") or "",
                amount=Decimal(str(amount)) if amount not in (None, "") else None,
                reference=str(entry.get("reference") or ""),
            )
        )
    balances = [
        Balance(
            code_masked="••••" + token["code"][-4:],
            original=Decimal(token["original"]),
            remaining=Decimal(token["remaining"]),
        )
        for token in control("GET", "tokens", account="demo-shop")
        if token["code"].startswith(code_prefix)
    ]
    return applied, balances


def check_stack(stack) -> Report:
    """The whole check against a running :class:`drills.stack.Stack`."""
    from django.db import connections

    connections.close_all()  # the drill may have restarted PostgreSQL under us
    ledger, bulk = collect_ledger()
    applied, balances = collect_sandbox(stack.control)
    return check(ledger=ledger, applied=applied, balances=balances, bulk_rows=bulk)
