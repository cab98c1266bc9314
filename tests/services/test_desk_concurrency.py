"""PostgreSQL: concurrent redeems of one code, and each of the two guards proven on its own.

The claim step (services/pipeline.py, ``operation_claim``) has two guards: the per-code advisory lock
(services/locking.py) makes "check the ledger, then insert the pending row" atomic per code, and
the partial unique constraint "one open redeem per code" refuses a second open row. Either alone
hides the other in a plain load test, so each guard gets a test that forces, deterministically,
the one interleaving only that guard stops (no sleeps deciding the outcome), and a control that
removes just that guard and shows the same interleaving going wrong:

- lock: till A has passed its checks and not yet inserted; till B runs a whole redeem in that gap.
  With the lock B waits (seen in ``pg_locks``) and is then refused before any provider call;
  without it B redeems, A inserts on a stale card and a second redeem reaches the provider.
- constraint (lock removed): both tills pass their checks, meet at a barrier, then both insert.
  The constraint lets one through; without it both reach the provider together and overspend.

The seam is ``pipeline.operation_insert`` (the insert), wrapped per test. The fake provider's
``during`` hook runs inside its redeem, which makes its balance update a read-modify-write
without a provider-side lock (tests/support/fakes.py).
"""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.db import connection

from vouchers.models import ProviderOperation
from vouchers.services import pipeline
from vouchers.services.refusals import Refusal
from vouchers.services.tokens import token_check, token_redeem

from ..support.factories import make_user

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
        except Refusal as exc:
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


OPEN_REDEEM_CONSTRAINT = "op_one_open_redeem_per_code"
WAIT = 20  # seconds; only a safety net: no outcome depends on it


def _no_lock(*args):
    return None


def _drop_constraint():
    constraint = next(c for c in ProviderOperation._meta.constraints if c.name == OPEN_REDEEM_CONSTRAINT)
    with connection.schema_editor() as editor:
        editor.remove_constraint(ProviderOperation, constraint)
    return constraint


def _restore_constraint(constraint):
    # Rows the guard-less run left behind would stop the constraint being created again.
    ProviderOperation.objects.filter(kind="redeem").delete()
    with connection.schema_editor() as editor:
        editor.add_constraint(ProviderOperation, constraint)


@pytest.fixture
def without_constraint(transactional_db):
    constraint = _drop_constraint()
    yield
    _restore_constraint(constraint)


def _two_tills(campaign, *, amount="20"):
    users = [make_user(None, campaign) for _ in range(2)]
    return [
        {
            "user": user,
            "card": token_check(campaign=campaign, user=user, code=CODE),
            "request_token": uuid.uuid4().hex,
            "amount": Decimal(amount),
        }
        for user in users
    ]


def _redeem(campaign, till, crashes):
    try:
        token_redeem(
            campaign=campaign,
            user=till["user"],
            code=CODE,
            amount=till["amount"],
            request_token=till["request_token"],
            check_operation_id=till["card"].operation.pk,
        )
    except Refusal:
        pass  # the refusal is in the ledger, read below
    except Exception as exc:  # pragma: no cover - reported by the assertions
        crashes.append(repr(exc))
    finally:
        connection.close()


def _ledger_outcome(till) -> str:
    """What the ledger says of a till's attempt: its state, or the refusal's error code."""
    row = ProviderOperation.objects.get(request_token=till["request_token"])
    return row.error_code if row.error_code in ("CodeBusy", "BalanceChanged") else row.state


def _start_and_join(threads):
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=3 * WAIT)
    assert not any(thread.is_alive() for thread in threads), "a till hung"


def _waiting_for_advisory_lock() -> bool:
    """Another session of this test database is blocked on an advisory lock (the per-code lock)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


def _run_gap_interleaving(campaign, monkeypatch):
    """Till A pauses between its checks and its insert; till B runs a whole redeem meanwhile.

    A goes on once B is either finished (nothing held it back: no lock) or blocked waiting on the
    advisory lock A holds. Both are states, not timings, so every run takes the same path.
    """
    a, b = _two_tills(campaign)
    b_done, a_checked = threading.Event(), threading.Event()
    real_claim = pipeline.operation_insert
    seen: dict[str, bool] = {}
    crashes: list[str] = []

    def claim_with_gap(**kwargs):
        if threading.current_thread().name == "till-A":
            a_checked.set()
            deadline = time.monotonic() + WAIT
            while not b_done.is_set() and not _waiting_for_advisory_lock():
                if time.monotonic() > deadline:
                    seen["timeout"] = True
                    break
                time.sleep(0.005)
            seen["b_was_done"] = b_done.is_set()
        return real_claim(**kwargs)

    monkeypatch.setattr(pipeline, "operation_insert", claim_with_gap)

    def till_b():
        try:
            if a_checked.wait(WAIT):
                _redeem(campaign, b, crashes)
        finally:
            b_done.set()

    _start_and_join(
        [
            threading.Thread(target=_redeem, args=(campaign, a, crashes), name="till-A"),
            threading.Thread(target=till_b, name="till-B"),
        ]
    )
    assert not crashes, crashes
    assert not seen.get("timeout"), "till A saw B neither finish nor wait for the lock"
    return _ledger_outcome(a), _ledger_outcome(b), seen["b_was_done"]


def test_the_lock_makes_check_and_insert_one_step(lina_campaign, fake_provider, monkeypatch):
    """The lock on its own: B, arriving while A is between its checks and its insert, waits for
    A's claim to commit and is then refused as out of date, before any provider call."""
    token = fake_provider.add_token(CODE, "30.00")
    a, b, b_was_done = _run_gap_interleaving(lina_campaign, monkeypatch)
    assert fake_provider.calls["redeem"] == 1
    assert a == "succeeded"
    assert b in ("BalanceChanged", "CodeBusy")
    assert token.remaining == Decimal("10.00")
    assert b_was_done is False  # B was blocked on the lock while A held it


def test_control_without_the_lock_a_stale_redeem_reaches_the_provider(
    lina_campaign, fake_provider, monkeypatch
):
    """Proves the lock test can fail: the same interleaving with only the lock made a no-op."""
    monkeypatch.setattr(pipeline, "lock_key", _no_lock)
    fake_provider.add_token(CODE, "30.00")
    a, b, b_was_done = _run_gap_interleaving(lina_campaign, monkeypatch)
    assert b_was_done is True  # nothing held B back
    assert b == "succeeded"
    # A inserted on a card its own ledger already showed to be stale and sent the redeem; the
    # constraint could not see it (B was no longer open). Only the provider's own balance check
    # refused it: two money-moving calls for one balance.
    assert fake_provider.calls["redeem"] == 2
    assert a == "failed"


def _run_insert_race(campaign, fake_provider, monkeypatch):
    """Lock removed: both tills pass their checks, meet at a barrier, then both insert.

    A till whose row went in goes on to the provider, where the fake holds each redeem until both
    claims are settled and every inserted row has arrived: two inserted rows always read the same
    balance (the provider-side race), one inserted row goes through alone.
    """
    monkeypatch.setattr(pipeline, "lock_key", _no_lock)
    tills = _two_tills(campaign)
    at_insert = threading.Barrier(2, timeout=WAIT)
    real_claim = pipeline.operation_insert
    state = {"settled": 0, "claimed": 0, "arrived": 0}
    changed = threading.Condition()
    crashes: list[str] = []

    def claim_in_step(**kwargs):
        at_insert.wait()
        try:
            result = real_claim(**kwargs)
            with changed:
                state["claimed"] += 1
            return result
        finally:
            with changed:
                state["settled"] += 1
                changed.notify_all()

    def provider_meets(**kwargs):
        with changed:
            state["arrived"] += 1
            changed.notify_all()
            met = changed.wait_for(
                lambda: state["settled"] == 2 and state["arrived"] >= state["claimed"], WAIT
            )
        if not met:
            crashes.append("the provider waited in vain")

    monkeypatch.setattr(pipeline, "operation_insert", claim_in_step)
    fake_provider.during("redeem", provider_meets)
    _start_and_join(
        [
            threading.Thread(target=_redeem, args=(campaign, till, crashes), name=f"till-{i}")
            for i, till in enumerate(tills)
        ]
    )
    assert not crashes, crashes
    return sorted(_ledger_outcome(till) for till in tills)


def test_the_constraint_alone_lets_one_of_two_simultaneous_inserts_in(
    lina_campaign, fake_provider, monkeypatch
):
    """The constraint on its own (lock removed): two tills past their checks insert at the same
    moment; one row goes in, the other is refused as busy and never reaches the provider."""
    token = fake_provider.add_token(CODE, "30.00")
    outcomes = _run_insert_race(lina_campaign, fake_provider, monkeypatch)
    assert outcomes == ["CodeBusy", "succeeded"]
    assert fake_provider.calls["redeem"] == 1
    assert _redeemed(lina_campaign) == Decimal("20.00")
    assert token.remaining == Decimal("10.00")


def test_control_without_lock_and_constraint_the_race_overspends(
    lina_campaign, fake_provider, monkeypatch, without_constraint
):
    """Proves the constraint test can fail: the same race with the constraint dropped as well.

    Both rows go in, both redeems reach the provider together and 40 is redeemed from 30.
    """
    token = fake_provider.add_token(CODE, "30.00")
    outcomes = _run_insert_race(lina_campaign, fake_provider, monkeypatch)
    assert outcomes == ["succeeded", "succeeded"]
    assert fake_provider.calls["redeem"] == 2
    assert _redeemed(lina_campaign) == Decimal("40.00") > Decimal("30.00")
    assert token.remaining >= 0  # the fake lost an update: it cannot even tell
