"""PostgreSQL: 20 tills redeem the same code at once.

The fake provider gets a hook that sleeps inside each redeem, which also makes its balance update
a read-modify-write without a provider-side lock (tests/fakes.py, ``during``). The control test
shows the race is real: with the portal's per-code lock and the partial unique constraint both
removed, concurrent redeems overspend. With them in place, the total stays within the balance.
"""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.db import connection

from vouchers.models import ProviderOperation
from vouchers.services import tokens
from vouchers.services.ledger import CodeBusy
from vouchers.services.tokens import DeskInputError, token_check, token_redeem

from .factories import make_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CODE = "RACE1234EFGH5678"
THREADS = 20


def _run_tills(campaign, fake_provider, *, amount="20"):
    """20 threads, 10 cashiers: every request token is sent by two threads (a double click)."""
    users = [make_user(None, campaign) for _ in range(THREADS // 2)]
    cards = [token_check(campaign=campaign, user=user, code=CODE) for user in users]
    request_tokens = [uuid.uuid4().hex for _ in users]
    fake_provider.during("redeem", lambda **kw: time.sleep(0.15))
    barrier = threading.Barrier(THREADS)
    results, failures = [], []

    def till(i):
        user_index = i % len(users)
        try:
            barrier.wait(timeout=10)
            outcome = token_redeem(
                campaign=campaign,
                user=users[user_index],
                code=CODE,
                amount=Decimal(amount),
                request_token=request_tokens[user_index],
                check_operation_id=cards[user_index].operation.pk,
            )
            results.append(outcome.operation.pk)
        except (CodeBusy, DeskInputError) as exc:
            results.append(type(exc).__name__)
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            failures.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=till, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    return request_tokens


def _redeemed(campaign) -> Decimal:
    return sum(
        (
            op.amount
            for op in ProviderOperation.objects.filter(campaign=campaign, kind="redeem", state="succeeded")
        ),
        Decimal("0"),
    )


def test_twenty_tills_one_code_never_overspend(lina_campaign, fake_provider):
    token = fake_provider.add_token(CODE, "30.00")
    request_tokens = _run_tills(lina_campaign, fake_provider)
    redeems = ProviderOperation.objects.filter(campaign=lina_campaign, kind="redeem")
    # Every attempt is in the ledger, exactly once per request token.
    assert sorted(redeems.values_list("request_token", flat=True)) == sorted(request_tokens)
    assert not redeems.filter(state__in=["pending", "unknown", "needs_review"]).exists()
    # One provider call at most per request token, and only for claimed (not refused) attempts.
    called = redeems.exclude(error_code__in=["CodeBusy", "BalanceChanged"]).count()
    assert fake_provider.calls["redeem"] == called <= len(request_tokens)
    # One till wins; every other attempt was refused as busy or out of date.
    assert _redeemed(lina_campaign) == Decimal("20.00") <= Decimal("30.00")
    assert token.remaining == Decimal("30.00") - _redeemed(lina_campaign)


def test_the_constraint_alone_still_stops_the_race(lina_campaign, fake_provider, monkeypatch):
    monkeypatch.setattr(tokens, "lock_key", lambda *args: None)
    monkeypatch.setattr(tokens, "_open_redeem_on_code", lambda **kwargs: None)
    token = fake_provider.add_token(CODE, "30.00")
    _run_tills(lina_campaign, fake_provider)
    assert _redeemed(lina_campaign) == Decimal("20.00")
    assert token.remaining == Decimal("30.00") - _redeemed(lina_campaign)


def test_control_without_lock_and_constraint_the_race_overspends(lina_campaign, fake_provider, monkeypatch):
    """Proves the tests above can fail: without the portal's guards the same run overspends.

    Removed: the per-code lock, the open-redeem check, the stale-card check and the partial
    unique constraint. Two overlapping redeems of 20 from 30 are already an overspend.
    """
    monkeypatch.setattr(tokens, "lock_key", lambda *args: None)
    monkeypatch.setattr(tokens, "_open_redeem_on_code", lambda **kwargs: None)
    monkeypatch.setattr(tokens, "_redeemed_since_check", lambda **kwargs: False)
    constraint = next(
        c for c in ProviderOperation._meta.constraints if c.name == "op_one_open_redeem_per_code"
    )
    with connection.schema_editor() as editor:
        editor.remove_constraint(ProviderOperation, constraint)
    try:
        token = fake_provider.add_token(CODE, "30.00")
        _run_tills(lina_campaign, fake_provider)
        overspent = _redeemed(lina_campaign)
        assert overspent > Decimal("30.00"), overspent
        assert fake_provider.calls["redeem"] >= 2
        assert token.remaining >= 0  # the fake lost updates: it cannot even tell
    finally:
        ProviderOperation.objects.filter(kind="redeem").delete()
        with connection.schema_editor() as editor:
            editor.add_constraint(ProviderOperation, constraint)
