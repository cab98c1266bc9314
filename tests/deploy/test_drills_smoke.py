"""The drills' invariant checker, on constructed ledgers: it must see what it is there to see.

No stack is started here (the drills themselves do that): a checker that passes everything
would make every drill figure worthless, so it is tested on a clean case and on each kind of
violation it claims to detect.
"""

from __future__ import annotations

from decimal import Decimal

from drills.invariants import Applied, Balance, BulkRow, LedgerOp, check

D = Decimal


def _clean_case():
    ledger = [
        LedgerOp(1, "redeem", "succeeded", "••••0001", D("1.00"), "t1"),
        LedgerOp(2, "redeem", "succeeded", "••••0001", D("2.00"), "t2", resolved=True),  # unknown → resolved
        LedgerOp(3, "redeem", "failed", "••••0001", D("5.00"), "t3", error_code="CodeBusy"),  # never sent
        LedgerOp(4, "purchase", "succeeded", "••••AB12", D("10.00"), "p1"),
        LedgerOp(5, "purchase", "needs_review", "", D("10.00"), "p2"),  # lost answer, flagged
        LedgerOp(6, "allocate", "succeeded", "••••9999", D("100"), "a1"),
    ]
    applied = [
        Applied("redeem", "••••0001", D("1.00")),
        Applied("redeem", "••••0001", D("2.00")),
        Applied("purchase", "••••AB12", D("10.00")),
        Applied("purchase", "••••ZZ99", D("10.00")),  # the one whose answer was lost
        Applied("allocate", reference="a1"),
    ]
    balances = [Balance("••••0001", D("50.00"), D("47.00"))]
    bulk = [BulkRow("p1", "p1"), BulkRow("p2", "p2")]
    return ledger, applied, balances, bulk


def test_clean_case_passes_with_its_figures():
    ledger, applied, balances, bulk = _clean_case()
    report = check(ledger=ledger, applied=applied, balances=balances, bulk_rows=bulk)
    assert report.ok, report.lines()
    assert (report.applied, report.succeeded, report.failed) == (5, 4, 1)
    assert (report.unknown_resolved, report.unknown_open) == (1, 1)
    assert (report.lost, report.duplicated, report.phantom) == (0, 0, 0)


def test_a_redeem_applied_but_recorded_failed_is_lost():
    ledger, applied, balances, _bulk = _clean_case()
    ledger[1] = LedgerOp(2, "redeem", "failed", "••••0001", D("2.00"), "t2")
    report = check(ledger=ledger, applied=applied, balances=balances)
    assert not report.ok
    assert report.lost == 1 and report.duplicated == 0
    assert report.balance_mismatches == 1  # the sandbox balance is 2.00 lower than the ledger says


def test_a_redeem_applied_twice_for_one_attempt_is_duplicated():
    ledger, applied, balances, _bulk = _clean_case()
    applied.append(Applied("redeem", "••••0001", D("2.00")))
    balances = [Balance("••••0001", D("50.00"), D("45.00"))]
    report = check(ledger=ledger, applied=applied, balances=balances)
    assert not report.ok
    assert report.duplicated == 1 and report.lost == 0


def test_a_ledger_success_the_provider_never_applied_is_phantom():
    ledger, applied, balances, _bulk = _clean_case()
    applied = [e for e in applied if e.operation != "allocate"]
    report = check(ledger=ledger, applied=applied, balances=balances)
    assert not report.ok
    assert report.phantom == 1


def test_purchases_and_allocations_lost_or_duplicated():
    ledger, applied, balances, _bulk = _clean_case()
    # A purchase the ledger calls failed, but the provider applied: lost.
    failed = LedgerOp(8, "purchase", "failed", "", D("10.00"), "p3", error_code="ProviderUnavailable")
    extra = Applied("purchase", "••••QQ77", D("10.00"))
    lost = check(ledger=[*ledger, failed], applied=[*applied, extra])
    assert (lost.lost, lost.duplicated) == (1, 0) and not lost.ok
    # The same application without any third purchase sent: done more often than asked.
    assert check(ledger=ledger, applied=[*applied, extra]).duplicated == 1
    # One allocate reference applied twice: duplicated.
    twice = check(ledger=ledger, applied=[*applied, Applied("allocate", reference="a1")], balances=balances)
    assert twice.duplicated == 1 and not twice.ok


def test_a_request_token_on_two_rows_or_a_bulk_row_sold_under_another_token_is_reported():
    ledger, applied, balances, bulk = _clean_case()
    report = check(
        ledger=[*ledger, LedgerOp(7, "redeem", "failed", "••••0002", D("1.00"), "t1")],
        applied=applied,
        balances=balances,
        bulk_rows=[*bulk, BulkRow("row-x", "p1")],
    )
    assert report.reused_tokens == 2 and not report.ok
    assert any("request token" in line for line in report.lines())


def test_report_lines_never_show_a_full_code():
    ledger, applied, balances, _bulk = _clean_case()
    applied.append(Applied("redeem", "••••0001", D("2.00")))
    text = "\n".join(check(ledger=ledger, applied=applied, balances=balances).lines())
    assert "••••0001" in text and "DR" not in text
