"""Desk services with the fake provider: check, redeem (claim → call → record), reconcile, resolve."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from portal.beat_schedule import BEAT_SCHEDULE
from vouchers import staff_text as messages
from vouchers.access import roles
from vouchers.models import AuditEvent, ProviderOperation, ReconcileTicket
from vouchers.providers import errors
from vouchers.selectors.desk import lina_today
from vouchers.services.operations import (
    operation_reconcile,
    operation_resolve,
    operations_reconcile_due,
)
from vouchers.services.pipeline import operation_claim
from vouchers.services.refusals import Refusal
from vouchers.services.tokens import token_check, token_redeem
from vouchers.tasks.desk import operation_reconcile_task
from vouchers.values.parsing import parse_amount, parse_code

from ..support.factories import make_user

pytestmark = pytest.mark.django_db

CODE = "ABCD1234EFGH5678"


def _redeem(campaign, user, card, amount, token=None):
    return token_redeem(
        campaign=campaign,
        user=user,
        code=card.code,
        amount=Decimal(amount),
        request_token=token or uuid.uuid4().hex,
        check_operation_id=card.operation.pk,
    )


@pytest.fixture
def token(fake_provider):
    return fake_provider.add_token(CODE, "50.00")


# --- Parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12,50", "12.50"),
        ("12.5", "12.50"),
        ("7", "7.00"),
        (" 3,05 € ", "3.05"),
        ("12.3400", "12.34"),
        # As the pages show amounts: German and English thousands separators with cents.
        ("1.234,50", "1234.50"),
        ("1,234.50 €", "1234.50"),
    ],
)
def test_parse_amount_accepts_dot_and_german_comma(raw, expected):
    assert parse_amount(raw) == Decimal(expected)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "required"),
        ("-5", "not_positive"),
        ("0", "not_positive"),
        ("0,00", "not_positive"),
        ("1e3", "invalid"),
        ("abc", "invalid"),
        ("12,345", "ambiguous"),
        ("12.345", "ambiguous"),
        ("12,3456", "too_precise"),
        ("1.234.50", "invalid"),
        ("1,234,50", "invalid"),
        ("١٢", "invalid"),
        ("9999999999999", "invalid"),
    ],
)
def test_parse_amount_refuses_bad_input_with_a_reason(raw, code):
    with pytest.raises(ValidationError) as exc:
        parse_amount(raw)
    assert exc.value.code == code


def test_parse_code_normalises_spaces_dashes_and_case():
    assert parse_code(" abcd-1234 efgh_5678 ") == CODE


@pytest.mark.parametrize(
    "raw", ["", "   ", "ABC", "A" * 40, "ÄBCD1234EFGH5678", "<script>alert(1)</script>", "ABCD1234EFGH567!"]
)
def test_parse_code_refuses_bad_codes(raw):
    with pytest.raises(ValidationError):
        parse_code(raw)


# --- Check --------------------------------------------------------------------------------------


def test_check_shows_the_card_and_logs_without_the_full_code(lina_campaign, cashier, token, fake_provider):
    card = token_check(campaign=lina_campaign, user=cashier, code="abcd-1234-efgh-5678")
    assert card.valid and not card.expired and card.redeemable
    assert card.display_code == "ABCD-1234-EFGH-5678"
    assert card.remaining_value == Decimal("50.00")
    op = ProviderOperation.objects.get()
    assert (op.kind, op.state, op.code_masked) == ("check", "succeeded", "••••5678")
    assert op.balance_after == Decimal("50.00")
    assert CODE not in json.dumps([op.request_data, op.response_data]) + op.code_masked
    assert fake_provider.calls["check"] == 1


@pytest.mark.parametrize("raw", ["", "ABC", "A" * 40, "ÄBCD1234EFGH5678", "<script>alert(1)</script>"])
def test_check_refuses_bad_codes_without_calling(lina_campaign, cashier, fake_provider, raw):
    with pytest.raises(Refusal) as exc:
        token_check(campaign=lina_campaign, user=cashier, code=raw)
    assert exc.value.field == "code"
    assert fake_provider.calls["check"] == 0
    assert not ProviderOperation.objects.exists()


def test_check_of_an_expired_token(lina_campaign, cashier, fake_provider):
    fake_provider.add_token(CODE, "20", valid_until=lina_today() - timedelta(days=1))
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    assert card.expired and not card.redeemable


def test_token_is_valid_through_the_end_of_its_day(lina_campaign, cashier, fake_provider):
    fake_provider.add_token(CODE, "20", valid_until=lina_today())
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    assert not card.expired
    assert _redeem(lina_campaign, cashier, card, "20").operation.state == "succeeded"


ALL_ERRORS = [
    errors.ProviderUnavailable(),
    errors.OutcomeUnknown(),
    errors.RateLimited(retry_at=timezone.now() + timedelta(minutes=5)),
    errors.AuthFailed(),
    errors.Misconfigured(),
    errors.ValidationFailed(),
    errors.TokenInvalid("Gutschein gesperrt"),
    errors.RedeemRefused("Restwert nicht ausreichend"),
]


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: type(e).__name__)
def test_check_errors_are_logged_and_explained(lina_campaign, cashier, token, fake_provider, error):
    fake_provider.fail_next("check", error)
    with pytest.raises(Refusal) as refused:
        token_check(campaign=lina_campaign, user=cashier, code=CODE)
    assert refused.value.code == type(error).__name__ and refused.value.by_provider
    op = ProviderOperation.objects.get()
    assert (op.state, op.error_code) == ("failed", type(error).__name__)
    text = messages.provider_error_text(error)
    assert text and "Traceback" not in text
    if isinstance(error, errors.RateLimited):
        assert "Try again after" in text
    if isinstance(error, errors.Rejected):
        assert error.message in text


def test_check_refuses_a_switched_off_campaign(lina_campaign, cashier, token, fake_provider):
    lina_campaign.is_live = False
    lina_campaign.save()
    with pytest.raises(Refusal):
        token_check(campaign=lina_campaign, user=cashier, code=CODE)
    assert fake_provider.calls["check"] == 0


# --- Redeem -------------------------------------------------------------------------------------


def test_redeem_part_then_the_rest(lina_campaign, cashier, token, fake_provider):
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    first = _redeem(lina_campaign, cashier, card, "20.00").operation
    assert (first.state, first.balance_before, first.balance_after) == (
        "succeeded",
        Decimal("50.00"),
        Decimal("30.00"),
    )
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    second = _redeem(lina_campaign, cashier, card, "30.00").operation
    assert (second.state, second.balance_after) == ("succeeded", Decimal("0.00"))
    assert token.remaining == Decimal("0")
    assert fake_provider.calls["redeem"] == 2
    assert not ReconcileTicket.objects.exists()
    assert AuditEvent.objects.filter(action="token.redeemed").count() == 2
    for op in ProviderOperation.objects.all():
        assert CODE not in json.dumps([op.request_data, op.response_data])


def test_same_request_token_redeems_once_and_shows_the_same_result(
    lina_campaign, cashier, token, fake_provider
):
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    request_token = uuid.uuid4().hex
    first = _redeem(lina_campaign, cashier, card, "10", token=request_token)
    again = _redeem(lina_campaign, cashier, card, "10", token=request_token)
    assert not first.replayed and again.replayed
    assert again.operation.pk == first.operation.pk
    assert fake_provider.calls["redeem"] == 1
    assert token.remaining == Decimal("40.00")


def test_request_token_of_another_user_is_refused(lina_campaign, cashier, token, fake_provider):
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    request_token = uuid.uuid4().hex
    _redeem(lina_campaign, cashier, card, "10", token=request_token)
    other = make_user(roles.CASHIER, lina_campaign)
    other_card = token_check(campaign=lina_campaign, user=other, code=CODE)
    with pytest.raises(Refusal):
        _redeem(lina_campaign, other, other_card, "10", token=request_token)
    assert fake_provider.calls["redeem"] == 1


@pytest.mark.parametrize(
    ("amount", "setup"),
    [
        ("0", {}),
        ("-5", {}),
        ("50.01", {}),
        ("1000", {}),
        ("10.005", {}),
        ("10", {"full_value_only": True}),
        ("10", {"valid": False}),
        ("10", {"valid_until": "yesterday"}),
    ],
)
def test_redeem_is_validated_before_any_call(lina_campaign, cashier, fake_provider, amount, setup):
    if setup.get("valid_until") == "yesterday":
        setup = {"valid_until": lina_today() - timedelta(days=1)}
    fake_provider.add_token(CODE, "50", **setup)
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    with pytest.raises(Refusal) as exc:
        _redeem(lina_campaign, cashier, card, amount)
    assert exc.value.field == "amount"
    assert fake_provider.calls["redeem"] == 0
    assert not ProviderOperation.objects.filter(kind="redeem").exists()


def test_full_value_only_token_redeems_the_whole_value(lina_campaign, cashier, fake_provider):
    fake_provider.add_token(CODE, "25", full_value_only=True)
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    assert _redeem(lina_campaign, cashier, card, "25").operation.state == "succeeded"


def test_redeem_needs_the_users_own_check_of_that_code(lina_campaign, cashier, token, fake_provider):
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    with pytest.raises(Refusal):  # a different code than the one checked
        token_redeem(
            campaign=lina_campaign,
            user=cashier,
            code="ZZZZ1234EFGH5678",
            amount=Decimal("1"),
            request_token=uuid.uuid4().hex,
            check_operation_id=card.operation.pk,
        )
    other = make_user(roles.CASHIER, lina_campaign)
    with pytest.raises(Refusal):  # someone else's check
        _redeem(lina_campaign, other, card, "1")
    with pytest.raises(Refusal):  # not a check id at all
        token_redeem(
            campaign=lina_campaign,
            user=cashier,
            code=CODE,
            amount=Decimal("1"),
            request_token=uuid.uuid4().hex,
            check_operation_id="x' OR 1=1",
        )
    assert fake_provider.calls["redeem"] == 0


@pytest.mark.parametrize(
    "error",
    [e for e in ALL_ERRORS if not isinstance(e, errors.OutcomeUnknown)],
    ids=lambda e: type(e).__name__,
)
def test_redeem_errors_are_recorded_as_failed_and_explained(
    lina_campaign, cashier, token, fake_provider, error
):
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    fake_provider.fail_next("redeem", error)
    op = _redeem(lina_campaign, cashier, card, "10").operation
    assert (op.state, op.error_code) == ("failed", type(error).__name__)
    assert token.remaining == Decimal("50")
    assert not ReconcileTicket.objects.exists()
    text = messages.operation_error_text(op)
    assert text
    if isinstance(error, errors.Rejected):
        assert error.message in text
    if isinstance(error, errors.RateLimited):
        assert "Try again after" in text
    assert AuditEvent.objects.filter(action="token.redeem_failed").count() == 1


def test_a_second_till_is_told_the_code_is_busy(lina_campaign, cashier, token, fake_provider):
    other = make_user(roles.CASHIER, lina_campaign)
    card_a = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    card_b = token_check(campaign=lina_campaign, user=other, code=CODE)
    seen = []

    def second_till(**kwargs):
        fake_provider.during("redeem", None)
        with pytest.raises(Refusal) as exc:
            _redeem(lina_campaign, other, card_b, "5")
        seen.append(exc.value.operation)

    fake_provider.during("redeem", second_till)
    assert _redeem(lina_campaign, cashier, card_a, "10").operation.state == "succeeded"
    assert fake_provider.calls["redeem"] == 1
    (busy,) = seen
    assert (busy.state, busy.error_code, busy.user) == ("failed", "CodeBusy", other)
    assert messages.operation_error_text(busy) == str(messages.CODE_BUSY)


def test_a_stale_card_is_refused_after_another_redeem(lina_campaign, cashier, token, fake_provider):
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    _redeem(lina_campaign, cashier, card, "40")
    with pytest.raises(Refusal) as exc:
        _redeem(lina_campaign, cashier, card, "10")
    assert exc.value.message == str(messages.BALANCE_CHANGED)
    assert fake_provider.calls["redeem"] == 1
    assert ProviderOperation.objects.filter(kind="redeem", error_code="BalanceChanged").count() == 1


def test_the_constraint_backs_up_the_lock(lina_campaign, cashier, token):
    operation_claim(campaign=lina_campaign, user=cashier, kind="redeem", request_token="a" * 32, code=CODE)
    with pytest.raises(Refusal):
        operation_claim(
            campaign=lina_campaign, user=cashier, kind="redeem", request_token="b" * 32, code=CODE
        )


# --- Unknown outcome and reconcile --------------------------------------------------------------


def test_lost_answer_is_reconciled_at_once_to_succeeded(lina_campaign, cashier, token, fake_provider):
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    fake_provider.lose_answer_next("redeem")
    op = _redeem(lina_campaign, cashier, card, "15").operation
    assert op.state == "succeeded"
    assert op.balance_after == Decimal("35.00")
    assert op.resolved_at is not None and "redeemed" in op.resolution_note
    assert fake_provider.calls["redeem"] == 1  # never sent again
    assert not ReconcileTicket.objects.exists()
    assert AuditEvent.objects.filter(action="operation.reconciled").count() == 1


def test_lost_request_stays_unknown_until_settled_then_fails(
    lina_campaign, cashier, token, fake_provider, settings
):
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    fake_provider.fail_next("redeem", errors.OutcomeUnknown())  # the provider never saw it
    op = _redeem(lina_campaign, cashier, card, "15").operation
    assert op.state == "unknown"  # unchanged right away is not conclusive yet
    assert ReconcileTicket.objects.filter(operation=op).exists()
    settings.DESK_RECONCILE_SETTLE_SECONDS = 0
    op = operation_reconcile(operation_id=op.pk)
    assert op.state == "failed"
    assert token.remaining == Decimal("50")
    assert fake_provider.calls["redeem"] == 1
    assert not ReconcileTicket.objects.exists()


def test_other_balance_change_needs_review(lina_campaign, cashier, token, fake_provider):
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    fake_provider.fail_next("check", errors.ProviderUnavailable())  # the immediate re-check fails
    fake_provider.lose_answer_next("redeem")
    op = _redeem(lina_campaign, cashier, card, "15").operation
    assert op.state == "unknown"
    token.remaining = Decimal("20")  # someone else redeemed at a till outside the portal
    op = operation_reconcile_task(op.pk) or ProviderOperation.objects.get(pk=op.pk)
    assert op.state == "needs_review"
    assert "does not match" in op.resolution_note


def test_reconcile_keeps_trying_then_asks_a_person(lina_campaign, cashier, token, fake_provider, settings):
    settings.DESK_RECONCILE_MAX_ATTEMPTS = 2
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    fake_provider.fail_next("check", errors.ProviderUnavailable())
    fake_provider.fail_next("check", errors.RateLimited())
    fake_provider.lose_answer_next("redeem")
    op = _redeem(lina_campaign, cashier, card, "15").operation
    assert op.state == "unknown"
    assert ReconcileTicket.objects.get(operation=op).attempts == 1
    op = operation_reconcile(operation_id=op.pk)
    assert op.state == "needs_review"
    assert fake_provider.calls["redeem"] == 1


def test_reconcile_is_idempotent(lina_campaign, cashier, token, fake_provider):
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    op = _redeem(lina_campaign, cashier, card, "15").operation
    checks = fake_provider.calls["check"]
    assert operation_reconcile(operation_id=op.pk).state == "succeeded"
    assert fake_provider.calls["check"] == checks  # nothing to do, nothing called


def test_unexpected_client_exception_is_unknown_not_failed(lina_campaign, cashier, token, fake_provider):
    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    fake_provider.fail_next("check", errors.ProviderUnavailable())  # the immediate re-check fails too

    def broken(code, amount):
        raise RuntimeError("an unmapped transport failure")

    fake_provider.redeem = broken
    op = _redeem(lina_campaign, cashier, card, "15").operation
    assert op.state == "unknown"
    assert op.error_code == "OutcomeUnknown"


def test_due_sweep_turns_stale_pending_into_unknown_or_review(lina_campaign, allsafe_campaign, cashier):
    redeem = operation_claim(campaign=lina_campaign, user=cashier, kind="redeem", code=CODE).operation
    purchase = operation_claim(campaign=lina_campaign, user=cashier, kind="purchase").operation
    fresh = operation_claim(
        campaign=lina_campaign, user=cashier, kind="redeem", code="ZZZZ1234EFGH5678"
    ).operation
    long_ago = timezone.now() - timedelta(hours=1)
    ProviderOperation.objects.filter(pk__in=[redeem.pk, purchase.pk]).update(created_at=long_ago)
    due = operations_reconcile_due()
    assert due == [redeem.pk]
    states = dict(ProviderOperation.objects.values_list("pk", "state"))
    assert states[redeem.pk] == "unknown"
    assert states[purchase.pk] == "needs_review"
    assert states[fresh.pk] == "pending"
    # The interrupted redeem had no reconcile ticket (claimed outside the desk): a person decides.
    assert operation_reconcile(operation_id=redeem.pk).state == "needs_review"


def test_beat_runs_the_reconcile_sweep():
    entry = BEAT_SCHEDULE["desk-reconcile-unknown"]
    assert entry["task"] == "vouchers.tasks.desk.operations_reconcile_due_task"
    assert entry["schedule"] <= 60


def test_sweep_task_fans_out_one_reconcile_per_unknown(
    lina_campaign, cashier, token, fake_provider, monkeypatch
):
    from vouchers.tasks import desk as desk_tasks

    card = token_check(campaign=lina_campaign, user=cashier, code=CODE)
    fake_provider.fail_next("check", errors.ProviderUnavailable())
    fake_provider.lose_answer_next("redeem")
    op = _redeem(lina_campaign, cashier, card, "15").operation
    sent = []
    monkeypatch.setattr(
        desk_tasks.operation_reconcile_task, "apply_async", lambda args, **options: sent.append(args[0])
    )
    desk_tasks.operations_reconcile_due_task()
    assert sent == [op.pk]


# --- Manual resolution --------------------------------------------------------------------------


def test_manual_resolution_of_any_kind_needs_a_reason_and_is_audited(lina_campaign, campaign_admin):
    op = operation_claim(campaign=lina_campaign, user=None, kind="purchase", amount=Decimal("25")).operation
    ProviderOperation.objects.filter(pk=op.pk).update(state="needs_review")
    with pytest.raises(Refusal) as exc:
        operation_resolve(operation_id=op.pk, actor=campaign_admin, state="succeeded", reason="  ")
    assert exc.value.field == "reason"
    with pytest.raises(Refusal):
        operation_resolve(operation_id=op.pk, actor=campaign_admin, state="pending", reason="x")
    op = operation_resolve(
        operation_id=op.pk, actor=campaign_admin, state="succeeded", reason="Seen in the LINA back office"
    )
    assert (op.state, op.resolved_by, op.resolution_note) == (
        "succeeded",
        campaign_admin,
        "Seen in the LINA back office",
    )
    event = AuditEvent.objects.get(action="operation.resolved")
    assert event.actor == campaign_admin and event.data["reason"] == "Seen in the LINA back office"
    with pytest.raises(Refusal):  # already settled
        operation_resolve(operation_id=op.pk, actor=campaign_admin, state="failed", reason="again")


def test_rate_limit_message_names_the_time():
    retry_at = timezone.make_aware(datetime.combine(timezone.localdate(), datetime.min.time())) + timedelta(
        hours=23, minutes=59
    )
    text = messages.provider_error_text(errors.RateLimited(retry_at=retry_at))
    assert "Try again after" in text
    assert "11:59" in text or "23:59" in text


def test_queries_per_redeem_do_not_grow_with_the_ledger(lina_campaign, cashier, fake_provider):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def one_redeem(code):
        fake_provider.add_token(code, "50")
        card = token_check(campaign=lina_campaign, user=cashier, code=code)
        with CaptureQueriesContext(connection) as queries:
            _redeem(lina_campaign, cashier, card, "10")
        return len(queries)

    first = one_redeem("AAAA1234EFGH0001")
    for i in range(2, 30):
        one_redeem(f"AAAA1234EFGH{i:04d}")
    assert one_redeem("AAAA1234EFGH9999") == first
