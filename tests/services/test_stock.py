"""Stock polling and alerts with the fake provider: snapshots, thresholds, alerts, e-mail, bad answers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.test import TestCase, override_settings
from django.utils import timezone

from vouchers.access import roles
from vouchers.models import (
    AuditEvent,
    ProviderOperation,
    StockAlert,
    StockLevel,
    StockMonitor,
    StockSnapshot,
    StockThreshold,
)
from vouchers.models.stock import AlertKind, AlertState
from vouchers.providers import base
from vouchers.providers.errors import AuthFailed, Misconfigured, ProviderUnavailable, RateLimited
from vouchers.security.fields import Ciphertext
from vouchers.services import stock as stock_services
from vouchers.services.stock import (
    ThresholdOverride,
    stock_history_cleanup,
    stock_poll,
    stock_poll_dispatch,
    stock_thresholds_save,
)

from ..support.factories import CampaignFactory, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admins(allsafe_campaign, campaign_admin):
    """The fixture campaign admin plus a second admin; a marketing member who must not be e-mailed."""
    second = make_user(roles.CAMPAIGN_ADMIN, allsafe_campaign, username="admin2")
    make_user(roles.MARKETING_MANAGER, allsafe_campaign, username="seller")
    return [campaign_admin, second]


def open_alerts(campaign, kind=None):
    qs = StockAlert.objects.filter(campaign=campaign, state=AlertState.OPEN)
    return list(qs.filter(kind=kind) if kind else qs)


def poll(campaign):
    return stock_poll(campaign_id=campaign.pk)


# --- Snapshots and the ledger -----------------------------------------------------------------


def test_a_poll_stores_a_snapshot_per_vendor_and_value_and_a_ledger_row(allsafe_campaign, fake_provider):
    fake_provider.set_stock("Takealot", 100, 25)
    fake_provider.set_stock("Takealot", 250, 12)
    fake_provider.set_stock("Uber", 50, 40)

    result = poll(allsafe_campaign)

    assert result.status == "succeeded"
    snapshot = StockSnapshot.objects.get(campaign=allsafe_campaign)
    assert {(lv.vendor, lv.value, lv.remaining) for lv in snapshot.levels.all()} == {
        ("Takealot", Decimal("100.00"), 25),
        ("Takealot", Decimal("250.00"), 12),
        ("Uber", Decimal("50.00"), 40),
    }
    operation = ProviderOperation.objects.get(campaign=allsafe_campaign)
    assert operation.kind == "poll" and operation.state == "succeeded"
    assert snapshot.operation == operation
    assert ["Uber", "50.00", 40] in operation.response_data["items"]
    monitor = StockMonitor.objects.get(campaign=allsafe_campaign)
    assert monitor.last_success_at == snapshot.taken_at
    assert monitor.consecutive_failures == 0
    assert open_alerts(allsafe_campaign) == []


def test_the_same_voucher_type_listed_twice_is_summed(allsafe_campaign, fake_provider):
    fake_provider.answer_next(
        "availability",
        base.Availability(
            items=(
                base.StockItem("Takealot", Decimal("100"), 5),
                base.StockItem("Takealot", Decimal("100.00"), 7),
            )
        ),
    )
    assert poll(allsafe_campaign).status == "succeeded"
    assert StockLevel.objects.get().remaining == 12


def test_polls_of_other_providers_and_campaigns_that_are_not_live_are_skipped(
    lina_campaign, allsafe_campaign, fake_provider
):
    assert poll(lina_campaign).status == "skipped"
    allsafe_campaign.is_live = False
    allsafe_campaign.save()
    assert poll(allsafe_campaign).status == "skipped"
    assert stock_poll(campaign_id=987654).status == "skipped"
    assert fake_provider.calls["availability"] == 0


# --- Low stock: open once, e-mail once, resolve, reopen ------------------------------------------


def test_low_stock_opens_once_emails_once_resolves_and_reopens(
    allsafe_campaign, admins, fake_provider, mailoutbox
):
    allsafe_campaign.low_stock_threshold = 10
    allsafe_campaign.save()
    fake_provider.set_stock("Takealot", 100, 9)

    first = poll(allsafe_campaign)
    [alert] = open_alerts(allsafe_campaign, AlertKind.LOW_STOCK)
    assert first.opened == [alert.pk]
    assert (alert.vendor, alert.value, alert.remaining, alert.threshold) == (
        "Takealot",
        Decimal("100.00"),
        9,
        10,
    )
    assert sorted(m.to[0] for m in mailoutbox) == sorted(u.email for u in admins)
    assert all(len(m.to) == 1 for m in mailoutbox), "one message per admin, no shared address list"
    assert "Takealot" in mailoutbox[0].body and "Allsafe vault" in mailoutbox[0].subject
    alert.refresh_from_db()
    assert alert.emailed_at is not None and alert.email_recipients == 2

    fake_provider.set_stock("Takealot", 100, 7)  # still low: nothing new
    poll(allsafe_campaign)
    assert len(open_alerts(allsafe_campaign)) == 1
    assert len(mailoutbox) == 2

    fake_provider.set_stock("Takealot", 100, 10)  # back at the threshold: resolved
    result = poll(allsafe_campaign)
    alert.refresh_from_db()
    assert result.resolved == [alert.pk]
    assert alert.state == AlertState.RESOLVED and alert.resolved_at is not None
    assert open_alerts(allsafe_campaign) == []

    fake_provider.set_stock("Takealot", 100, 3)  # falls again: a new episode, a new e-mail
    poll(allsafe_campaign)
    [again] = open_alerts(allsafe_campaign, AlertKind.LOW_STOCK)
    assert again.pk != alert.pk
    assert len(mailoutbox) == 4
    actions = list(AuditEvent.objects.filter(campaign=allsafe_campaign).values_list("action", flat=True))
    assert actions.count("stock.alert_opened") == 2 and actions.count("stock.alert_resolved") == 1


def test_out_of_stock_opens_its_own_alert_and_resolves_when_any_is_back(
    allsafe_campaign, admins, fake_provider, mailoutbox
):
    fake_provider.set_stock("Uber", 50, 0)
    poll(allsafe_campaign)
    # Out of stock supersedes low stock: one open alert per item (issue 19).
    assert [a.kind for a in open_alerts(allsafe_campaign)] == [AlertKind.OUT_OF_STOCK]
    assert len(mailoutbox) == 2  # one message per admin
    assert "out of stock" in mailoutbox[0].subject

    fake_provider.set_stock("Uber", 50, 4)
    poll(allsafe_campaign)
    assert [a.kind for a in open_alerts(allsafe_campaign)] == [AlertKind.LOW_STOCK]


def test_an_item_missing_from_an_answer_keeps_its_alerts(allsafe_campaign, fake_provider):
    fake_provider.set_stock("Uber", 50, 2)
    fake_provider.set_stock("Takealot", 100, 50)
    poll(allsafe_campaign)
    del fake_provider.stock[("Uber", Decimal("50"))]
    poll(allsafe_campaign)
    assert [a.vendor for a in open_alerts(allsafe_campaign)] == ["Uber"]


def test_overrides_per_vendor_and_per_value_win_over_the_default(
    allsafe_campaign, campaign_admin, fake_provider
):
    stock_thresholds_save(
        campaign=allsafe_campaign,
        actor=campaign_admin,
        default_threshold=10,
        overrides=[
            ThresholdOverride("takealot", None, 100),  # vendor names match case-insensitively
            ThresholdOverride("Takealot", Decimal("500"), 2),
        ],
    )
    fake_provider.set_stock("Takealot", 100, 50)  # below the vendor's 100
    fake_provider.set_stock("Takealot", 500, 5)  # above its own 2
    fake_provider.set_stock("Uber", 50, 9)  # below the default 10
    poll(allsafe_campaign)
    assert sorted((a.vendor, a.value, a.threshold) for a in open_alerts(allsafe_campaign)) == [
        ("Takealot", Decimal("100.00"), 100),
        ("Uber", Decimal("50.00"), 10),
    ]


def test_thresholds_save_is_audited_and_replaces_the_overrides(allsafe_campaign, campaign_admin):
    stock_thresholds_save(
        campaign=allsafe_campaign,
        actor=campaign_admin,
        default_threshold=5,
        overrides=[ThresholdOverride("Uber", Decimal("50"), 3)],
    )
    stock_thresholds_save(
        campaign=allsafe_campaign,
        actor=campaign_admin,
        default_threshold=5,
        overrides=[ThresholdOverride("Takealot", None, 8)],
    )
    allsafe_campaign.refresh_from_db()
    assert allsafe_campaign.low_stock_threshold == 5
    assert list(StockThreshold.objects.values_list("vendor", "value", "threshold")) == [("Takealot", None, 8)]
    events = AuditEvent.objects.filter(action="stock.thresholds_changed").order_by("created_at", "id")
    assert events.count() == 2
    assert events[1].actor == campaign_admin
    assert events[1].data["before"]["overrides"] == ["Uber 50.00: 3"]
    assert events[1].data["after"] == {"default": 5, "overrides": ["Takealot *: 8"]}
    # Saving the same again changes nothing and writes no audit event.
    stock_thresholds_save(
        campaign=allsafe_campaign,
        actor=campaign_admin,
        default_threshold=5,
        overrides=[ThresholdOverride("Takealot", None, 8)],
    )
    assert AuditEvent.objects.filter(action="stock.thresholds_changed").count() == 2


# --- Misconfiguration and stale data -------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected_checks"),
    [
        (AuthFailed(status_code=401), 3),
        (Misconfigured(status_code=491), 1),
    ],
)
def test_401_and_491_open_one_misconfiguration_alert_with_what_to_check(
    allsafe_campaign, admins, fake_provider, mailoutbox, error, expected_checks
):
    fake_provider.set_stock("Takealot", 100, 50)
    fake_provider.fail_next("availability", error)
    fake_provider.fail_next("availability", error)

    first = poll(allsafe_campaign)
    poll(allsafe_campaign)

    assert first.status == "failed" and not first.retryable
    [alert] = open_alerts(allsafe_campaign)
    assert alert.kind == AlertKind.MISCONFIGURED
    assert len(alert.what_to_check) == expected_checks
    assert len(mailoutbox) == 2  # one alert, one message per admin
    assert "Check:" in mailoutbox[0].body
    assert StockSnapshot.objects.count() == 0
    assert ProviderOperation.objects.filter(state="failed", error_code=error.code).count() == 2
    monitor = StockMonitor.objects.get()
    assert monitor.consecutive_failures == 2 and monitor.last_what_to_check == alert.what_to_check

    poll(allsafe_campaign)  # credentials fixed
    assert open_alerts(allsafe_campaign) == []


def test_undecryptable_credentials_are_a_misconfiguration_not_a_crash(allsafe_campaign, fake_provider):
    allsafe_campaign.api_password = Ciphertext("not-a-fernet-token")  # as if stored under a lost key
    allsafe_campaign.save()
    result = poll(allsafe_campaign)
    assert result.status == "failed"
    [alert] = open_alerts(allsafe_campaign)
    assert alert.kind == AlertKind.MISCONFIGURED
    assert "password" in alert.what_to_check[0]


def test_stale_alert_after_n_intervals_without_a_successful_poll(allsafe_campaign, fake_provider):
    allsafe_campaign.poll_interval_minutes = 5
    allsafe_campaign.stale_after_intervals = 3
    allsafe_campaign.save()
    fake_provider.set_stock("Takealot", 100, 50)
    poll(allsafe_campaign)
    monitor = StockMonitor.objects.get()

    # Down, but for less than 3 intervals: a failed poll, no stale alert yet.
    monitor.last_success_at = timezone.now() - timedelta(minutes=14)
    monitor.save()
    fake_provider.fail_next("availability", ProviderUnavailable())
    result = poll(allsafe_campaign)
    assert result.status == "failed" and result.retryable
    assert open_alerts(allsafe_campaign) == []

    # Down for 3 intervals: stale.
    monitor.refresh_from_db()
    monitor.last_success_at = timezone.now() - timedelta(minutes=16)
    monitor.save()
    for _ in range(2):
        fake_provider.fail_next("availability", ProviderUnavailable())
        poll(allsafe_campaign)
    [alert] = open_alerts(allsafe_campaign)
    assert alert.kind == AlertKind.STALE
    assert "could not be reached" in alert.message
    assert StockAlert.objects.count() == 1

    poll(allsafe_campaign)  # back
    assert open_alerts(allsafe_campaign) == []


def test_a_campaign_that_never_polled_successfully_goes_stale_too(allsafe_campaign, fake_provider):
    fake_provider.fail_next("availability", ProviderUnavailable())
    poll(allsafe_campaign)
    StockMonitor.objects.update(first_poll_at=timezone.now() - timedelta(hours=1))
    fake_provider.fail_next("availability", ProviderUnavailable())
    poll(allsafe_campaign)
    [alert] = open_alerts(allsafe_campaign)
    assert alert.kind == AlertKind.STALE and "No poll has succeeded yet" in alert.message


def test_the_dispatcher_opens_stale_alerts_even_when_no_poll_runs(
    allsafe_campaign, admins, fake_provider, mailoutbox
):
    fake_provider.set_stock("Takealot", 100, 50)
    poll(allsafe_campaign)
    later = timezone.now() + timedelta(hours=2)
    stock_poll_dispatch(enqueue=lambda pks: None, now=later)  # the enqueued polls never run
    [alert] = open_alerts(allsafe_campaign)
    assert alert.kind == AlertKind.STALE
    assert len(mailoutbox) == 2
    stock_poll_dispatch(enqueue=lambda pks: None, now=later + timedelta(minutes=1))
    assert StockAlert.objects.count() == 1


def test_rate_limited_is_retryable_with_its_retry_time(allsafe_campaign, fake_provider):
    until = timezone.now() + timedelta(minutes=3)
    fake_provider.fail_next("availability", RateLimited(retry_at=until))
    result = poll(allsafe_campaign)
    assert result.retryable and result.retry_at == until


# --- Broken answers -------------------------------------------------------------------------------


def _answer(*items):
    return base.Availability(items=tuple(items), raw={"what": "scripted"})


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (_answer(base.StockItem("Takealot", Decimal("100"), -3)), "impossible count"),
        (_answer(base.StockItem("Takealot", Decimal("100"), None)), "whole-number count"),
        (_answer(base.StockItem("Takealot", Decimal("100"), "12")), "whole-number count"),
        (_answer(base.StockItem("Takealot", Decimal("100"), True)), "whole-number count"),
        (_answer(base.StockItem("Takealot", Decimal("100"), 2.5)), "whole-number count"),
        (_answer(base.StockItem("", Decimal("100"), 5)), "vendor"),
        (_answer(base.StockItem(None, Decimal("100"), 5)), "vendor"),
        (_answer(base.StockItem("Takealot", Decimal("-100"), 5)), "value"),
        (_answer(base.StockItem("Takealot", "abc", 5)), "value"),
        (_answer(base.StockItem("Takealot", Decimal("NaN"), 5)), "value"),
        (_answer(), "listed no vouchers"),
        (base.Availability(items=None), "no list"),
        ("<html><body>502 Bad Gateway</body></html>", "no list"),
        (None, "no list"),
    ],
)
def test_broken_answers_are_failed_polls_never_alerts(
    allsafe_campaign, admins, fake_provider, mailoutbox, answer, reason
):
    fake_provider.set_stock("Takealot", 100, 50)
    poll(allsafe_campaign)
    fake_provider.answer_next("availability", answer)

    result = poll(allsafe_campaign)

    assert result.status == "failed" and not result.retryable
    operation = ProviderOperation.objects.filter(state="failed").get()
    assert operation.error_code == "StockAnswerInvalid"
    assert reason in operation.error_message
    assert "raw_excerpt" in operation.response_data
    assert StockSnapshot.objects.count() == 1  # only the good poll's
    assert open_alerts(allsafe_campaign) == []
    assert mailoutbox == []
    assert StockMonitor.objects.get().last_error_message == operation.error_message


def test_an_html_page_from_the_client_is_a_retryable_failed_poll(allsafe_campaign, fake_provider):
    fake_provider.fail_next("availability", ProviderUnavailable(status_code=502, detail="<html>"))
    result = poll(allsafe_campaign)
    assert result.status == "failed" and result.retryable
    assert ProviderOperation.objects.get().error_code == "ProviderUnavailable"


def test_an_unexpected_exception_is_a_failed_poll_not_a_dead_worker(allsafe_campaign, fake_provider):
    fake_provider.fail_next("availability", ValueError("bug in a parser"))  # not a ProviderError
    result = poll(allsafe_campaign)
    assert result.status == "failed" and result.error_code == "PollCrashed" and not result.retryable
    assert ProviderOperation.objects.get().error_code == "PollCrashed"


# --- Concurrency guards ---------------------------------------------------------------------------


def test_a_poll_already_running_for_the_campaign_makes_the_second_one_stand_down(
    allsafe_campaign, fake_provider
):
    from django.core.cache import cache

    fake_provider.set_stock("Uber", 50, 20)
    cache.add(f"stock-poll-lock:{allsafe_campaign.pk}", "someone else", timeout=60)
    assert poll(allsafe_campaign).status == "busy"
    assert fake_provider.calls["availability"] == 0
    cache.delete(f"stock-poll-lock:{allsafe_campaign.pk}")
    assert poll(allsafe_campaign).status == "succeeded"


def test_the_partial_unique_constraint_refuses_a_second_open_alert(allsafe_campaign):
    now = timezone.now()
    kwargs = {
        "campaign": allsafe_campaign,
        "kind": AlertKind.LOW_STOCK,
        "vendor": "Uber",
        "value": Decimal("50"),
    }
    first = stock_services._open_alert(now=now, message="one", **kwargs)
    assert first is not None
    assert stock_services._open_alert(now=now, message="two", **kwargs) is None
    with pytest.raises(IntegrityError), transaction.atomic():
        StockAlert.objects.create(
            campaign=allsafe_campaign, kind=AlertKind.LOW_STOCK, item_key=first.item_key, opened_at=now
        )
    # A resolved alert does not block a new episode; campaign-wide alerts are unique too.
    StockAlert.objects.filter(pk=first.pk).update(state=AlertState.RESOLVED)
    assert stock_services._open_alert(now=now, message="three", **kwargs) is not None
    assert stock_services._open_alert(campaign=allsafe_campaign, kind=AlertKind.STALE, now=now, message="s")
    assert (
        stock_services._open_alert(campaign=allsafe_campaign, kind=AlertKind.STALE, now=now, message="s")
        is None
    )


def test_an_older_poll_recorded_late_does_not_undo_a_newer_one(allsafe_campaign, fake_provider):
    fake_provider.set_stock("Uber", 50, 2)
    poll(allsafe_campaign)  # low-stock alert open
    StockMonitor.objects.update(last_poll_at=timezone.now() + timedelta(minutes=1))  # a newer poll recorded
    fake_provider.set_stock("Uber", 50, 80)
    poll(allsafe_campaign)  # stands for the older poll finishing late
    assert len(open_alerts(allsafe_campaign)) == 1
    assert StockSnapshot.objects.count() == 2  # its data is still history


# --- E-mail ---------------------------------------------------------------------------------------


def test_a_failed_send_is_retried_at_the_next_poll_and_never_doubled(
    allsafe_campaign, admins, fake_provider, mailoutbox, monkeypatch
):
    fake_provider.set_stock("Uber", 50, 2)
    monkeypatch.setattr(
        "django.core.mail.backends.locmem.EmailBackend.send_messages",
        lambda self, messages: (_ for _ in ()).throw(OSError("SMTP down")),
    )
    poll(allsafe_campaign)
    alert = StockAlert.objects.get()
    assert alert.emailed_at is None and alert.email_attempts == 1
    monkeypatch.undo()
    poll(allsafe_campaign)
    poll(allsafe_campaign)
    alert.refresh_from_db()
    assert alert.emailed_at is not None and alert.email_attempts == 2
    assert len(mailoutbox) == 2


def test_only_campaign_admins_of_that_campaign_with_an_address_are_emailed(
    allsafe_campaign, fake_provider, mailoutbox
):
    make_user(roles.CAMPAIGN_ADMIN, allsafe_campaign, username="noaddress", email="")
    make_user(roles.CAMPAIGN_ADMIN, allsafe_campaign, username="gone", is_active=False)
    make_user(roles.CAMPAIGN_ADMIN, CampaignFactory(provider="allsafe"), username="elsewhere")
    make_user(roles.CASHIER, allsafe_campaign, username="till")
    admin = make_user(roles.CAMPAIGN_ADMIN, allsafe_campaign, username="here")
    fake_provider.set_stock("Uber", 50, 1)
    poll(allsafe_campaign)
    assert [m.to for m in mailoutbox] == [[admin.email]]


def test_an_alert_mail_claimed_by_a_worker_that_died_is_sent_after_the_lease(
    allsafe_campaign, admins, fake_provider, mailoutbox
):
    """Claim, then the worker dies before sending: the alert is mailed later, not never."""
    fake_provider.set_stock("Uber", 50, 1)
    alert = StockAlert.objects.create(
        campaign=allsafe_campaign,
        kind=AlertKind.LOW_STOCK,
        item_key="Uber|50.00",
        vendor="Uber",
        value=Decimal("50"),
        message="low",
        opened_at=timezone.now() - timedelta(minutes=3),
        emailed_at=timezone.now() - timedelta(minutes=2),
        email_attempts=1,
    )
    assert stock_services.stock_alerts_notify(campaign=allsafe_campaign) == 0  # within the lease

    StockAlert.objects.filter(pk=alert.pk).update(
        emailed_at=timezone.now() - stock_services.EMAIL_CLAIM_LEASE - timedelta(seconds=1)
    )
    assert stock_services.stock_alerts_notify(campaign=allsafe_campaign) == len(admins)
    alert.refresh_from_db()
    assert (alert.email_recipients, alert.email_attempts) == (len(admins), 2)

    # Confirmed as sent: never again, however old.
    StockAlert.objects.filter(pk=alert.pk).update(emailed_at=timezone.now() - timedelta(days=1))
    assert stock_services.stock_alerts_notify(campaign=allsafe_campaign) == 0
    assert len(mailoutbox) == len(admins)


# --- Dispatch and history -------------------------------------------------------------------------


def test_dispatch_fans_out_due_live_allsafe_campaigns_once_per_interval(allsafe_campaign, lina_campaign):
    fast = CampaignFactory(provider="allsafe", poll_interval_minutes=1)
    CampaignFactory(provider="allsafe", is_live=False)
    CampaignFactory(provider="allsafe", ends_on=timezone.localdate() - timedelta(days=1))
    now = timezone.now()
    enqueued = []

    def enqueue(pks):  # one chunk of campaign ids
        enqueued.extend(pks)

    with TestCase.captureOnCommitCallbacks(execute=True):
        claimed = stock_poll_dispatch(enqueue=enqueue, now=now)
    assert sorted(claimed) == sorted(enqueued) == sorted([allsafe_campaign.pk, fast.pk])

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert stock_poll_dispatch(enqueue=enqueue, now=now + timedelta(seconds=30)) == []
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert stock_poll_dispatch(enqueue=enqueue, now=now + timedelta(minutes=1)) == [fast.pk]
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert sorted(stock_poll_dispatch(enqueue=enqueue, now=now + timedelta(minutes=5))) == sorted(
            [allsafe_campaign.pk, fast.pk]
        )
    assert len(enqueued) == 5


def test_dispatch_enqueues_nothing_when_its_transaction_does_not_commit(allsafe_campaign):
    enqueued = []
    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        stock_poll_dispatch(enqueue=enqueued.append)
    assert len(callbacks) == 1 and enqueued == []  # only runs once the claim is committed


@override_settings(STOCK_HISTORY_DAYS=30)
def test_history_cleanup_deletes_only_snapshots_past_retention(allsafe_campaign, fake_provider):
    fake_provider.set_stock("Uber", 50, 20)
    for _ in range(3):
        poll(allsafe_campaign)
    old, *_ = StockSnapshot.objects.order_by("taken_at")
    StockSnapshot.objects.filter(pk=old.pk).update(taken_at=timezone.now() - timedelta(days=31))
    assert stock_history_cleanup() == 1
    assert StockSnapshot.objects.count() == 2
    assert StockLevel.objects.count() == 2
    assert stock_history_cleanup() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_racing_to_open_the_same_alert_open_it_once(allsafe_campaign):
    """Eight threads (eight DB connections) insert the same open alert at once: one wins."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(8)
    results = []

    def race():
        try:
            barrier.wait()
            alert = stock_services._open_alert(
                allsafe_campaign,
                kind=AlertKind.OUT_OF_STOCK,
                now=timezone.now(),
                message="x",
                vendor="Uber",
                value=Decimal("50"),
            )
            results.append(alert is not None)
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert StockAlert.objects.count() == 1


# --- Allsafe 204: success with nothing to list ----------------------------------------------------


def test_nothing_left_puts_every_type_seen_last_at_zero_and_mails_out_of_stock_once(
    allsafe_campaign, admins, fake_provider, mailoutbox
):
    fake_provider.set_stock("Takealot", 100, 25)
    fake_provider.set_stock("Uber", 50, 40)
    assert poll(allsafe_campaign).status == "succeeded"
    fake_provider.answer_next("availability", base.Availability(items=(), nothing_left=True))

    result = poll(allsafe_campaign)

    assert result.status == "succeeded" and not result.error_code
    latest = StockSnapshot.objects.filter(campaign=allsafe_campaign).latest("taken_at", "id")
    assert {(lv.vendor, lv.value, lv.remaining) for lv in latest.levels.all()} == {
        ("Takealot", Decimal("100.00"), 0),
        ("Uber", Decimal("50.00"), 0),
    }
    empty = {(a.vendor, a.value) for a in open_alerts(allsafe_campaign, AlertKind.OUT_OF_STOCK)}
    assert empty == {("Takealot", Decimal("100.00")), ("Uber", Decimal("50.00"))}
    assert not open_alerts(allsafe_campaign, AlertKind.STALE)
    sent = len(mailoutbox)
    assert sent > 0
    fake_provider.answer_next("availability", base.Availability(items=(), nothing_left=True))
    again = poll(allsafe_campaign)
    assert again.status == "succeeded" and again.opened == [] and len(mailoutbox) == sent


def test_nothing_left_on_a_first_poll_is_a_success_with_nothing_to_alert(allsafe_campaign, fake_provider):
    fake_provider.answer_next("availability", base.Availability(items=(), nothing_left=True))
    result = poll(allsafe_campaign)
    assert result.status == "succeeded" and result.opened == []
    assert ProviderOperation.objects.get(campaign=allsafe_campaign).state == "succeeded"
