"""The desk against the live sandbox: the real LINA client, the real HTTP, the sandbox's faults.

An unknown outcome must never become a second redeem: every test that loses an answer checks
the sandbox's journal for exactly one applied redeem of the code.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import pytest
from django.urls import reverse

from vouchers.access import roles
from vouchers.models import AuditEvent, ProviderOperation
from vouchers.models.ledger import OperationKind, OperationState
from vouchers.providers.errors import RateLimited
from vouchers.services.operations import operation_reconcile
from vouchers.services.tokens import token_check, token_redeem
from vouchers.values.codes import mask_code

from ..support.factories import make_user
from ..support.sandbox import sandbox_lina_shop

pytestmark = pytest.mark.django_db

CODE = "SANDBOXDESK00042"


@pytest.fixture
def shop(sandbox, settings):
    settings.PROVIDER_RETRY_BACKOFF_SECONDS = 0  # read retries against a failing sandbox: no waiting
    return sandbox_lina_shop(sandbox, code=CODE, read_timeout=1)


@pytest.fixture
def till(shop):
    return make_user(roles.CASHIER, shop, username="till")


def applied_redeems(sandbox) -> list[dict]:
    return [e for e in sandbox.journal("lina", "redeem", applied=True) if e["code_masked"] == mask_code(CODE)]


def redeem(sandbox, shop, till, *faults, amount="15.00"):
    """Check the code, then inject ``faults`` (provider, operation, kind, options), then redeem."""
    card = token_check(campaign=shop, user=till, code=CODE)
    assert card.remaining_value == Decimal("40.00")
    for provider, operation, kind, options in faults:
        sandbox.set_fault(provider, operation, kind, **options)
    return token_redeem(
        campaign=shop,
        user=till,
        code=CODE,
        amount=Decimal(amount),
        request_token=uuid.uuid4().hex,
        check_operation_id=card.operation.pk,
    ).operation


def test_lost_answer_is_unknown_then_reconciles_to_succeeded(sandbox, shop, till):
    operation = redeem(
        sandbox,
        shop,
        till,
        ("lina", "redeem", "lost_answer", {}),
        # The immediate re-check gets no answer either, so the redeem stays unknown for the task.
        ("lina", "checkcode", "http_500", {"count": None}),
    )

    assert operation.state == OperationState.UNKNOWN
    assert operation.error_code == "OutcomeUnknown"
    assert len(applied_redeems(sandbox)) == 1  # the money moved; the portal does not know yet
    assert sandbox.token(CODE)["remaining"] == "25.00"

    sandbox.clear_faults()
    settled = operation_reconcile(operation_id=operation.pk)  # what the scheduled task runs

    assert settled.state == OperationState.SUCCEEDED
    assert settled.balance_after == Decimal("25.00")
    assert settled.resolved_at is not None
    assert len(applied_redeems(sandbox)) == 1  # reconciled by a check, never sent again
    assert ProviderOperation.objects.filter(kind=OperationKind.REDEEM).count() == 1
    actions = list(AuditEvent.objects.filter(object_id=str(operation.pk)).values_list("action", flat=True))
    assert "token.redeem_unknown" in actions and "operation.reconciled" in actions


def test_lost_answer_reconciled_at_once_when_the_check_answers(sandbox, shop, till):
    operation = redeem(sandbox, shop, till, ("lina", "redeem", "lost_answer", {}), amount="40.00")

    assert operation.state == OperationState.SUCCEEDED  # balance dropped by the amount: conclusive
    assert operation.error_code == "OutcomeUnknown"  # what the call itself ended as
    assert operation.resolved_at is not None
    assert len(applied_redeems(sandbox)) == 1
    assert sandbox.token(CODE)["remaining"] == "0.00"


def test_hang_past_the_read_timeout_is_unknown_then_succeeded(sandbox, shop, till):
    operation = redeem(
        sandbox,
        shop,
        till,
        # The sandbox applies the redeem, then answers after 3 s; the campaign's read timeout is 1 s.
        ("lina", "redeem", "hang", {"seconds": 3}),
        ("lina", "checkcode", "http_500", {"count": None}),
    )

    assert operation.state == OperationState.UNKNOWN
    assert operation.error_code == "OutcomeUnknown"

    sandbox.clear_faults()
    settled = operation_reconcile(operation_id=operation.pk)

    assert settled.state == OperationState.SUCCEEDED
    assert settled.balance_after == Decimal("25.00")
    assert len(applied_redeems(sandbox)) == 1
    assert sandbox.token(CODE)["remaining"] == "25.00"


def test_denied_shows_the_rate_limited_message_with_a_time(sandbox, shop, till, client):
    sandbox.set_fault("lina", "checkcode", "denied")
    client.force_login(till)

    response = client.post(reverse("vouchers:desk-check", kwargs={"campaign": shop.slug}), {"code": CODE})

    assert response.status_code == 200
    text = re.sub(r"\s+", " ", response.content.decode())
    assert "refusing calls for this campaign after too many failed attempts" in text
    assert re.search(r"Try again after \d{1,2}[:.]\d{2}", text), "the message says when to try again"
    check = ProviderOperation.objects.get(kind=OperationKind.CHECK)
    assert check.state == OperationState.FAILED and check.error_code == RateLimited.__name__

    # The cool-down holds: the sandbox's one DENIED is used up, yet the next check is still
    # refused, by the portal itself, without asking LINA (every call would extend the lock-out).
    assert sandbox.faults() == []
    again = client.post(reverse("vouchers:desk-check", kwargs={"campaign": shop.slug}), {"code": CODE})
    assert "Try again after" in again.content.decode()
    assert ProviderOperation.objects.filter(kind=OperationKind.CHECK, error_code="RateLimited").count() == 2
