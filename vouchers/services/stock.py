"""Stock monitoring of Allsafe campaigns: polling, history, thresholds and alerts.

Who calls what:
- the beat entry runs :func:`stock_poll_dispatch` every minute; it claims the live Allsafe
  campaigns whose poll is due, STOCK_POLL_CHUNK_SIZE at a time, and enqueues one poll task per
  chunk;
- each chunk task runs :func:`stock_poll_chunk`: the chunk's ``availability`` calls on a thread
  pool with no transaction held and no database access, then one transaction that writes every
  ledger row, snapshot and monitor of the chunk in bulk; the campaigns whose alerts change go to
  the alert task, :func:`stock_poll_alerts` (alerts, then their e-mail);
- :func:`stock_poll` is the same for one campaign, alerts and e-mail included, in the caller;
- :func:`stock_history_cleanup` deletes history older than ``STOCK_HISTORY_DAYS``.

Alerts are never duplicated: opening one is an INSERT guarded by the partial unique constraint
``stock_alert_one_open_per_item`` (the loser gets IntegrityError and does nothing), and its e-mail
is claimed with a conditional UPDATE of ``emailed_at`` before it is sent.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import staff_text
from ..models import Campaign, StockAlert, StockLevel, StockMonitor, StockSnapshot, StockThreshold
from ..models.campaigns import Provider
from ..models.ledger import OperationKind
from ..models.stock import (
    ITEM_ALERT_KINDS,
    AlertKind,
    AlertState,
    stale_alert_stored,
    stock_item_key,
    stock_item_message,
    stock_item_stored,
    wanted_item_alert,
)
from ..providers.errors import AuthFailed, Misconfigured, ProviderError, ProviderUnavailable, RateLimited
from ..selectors.stock import ThresholdRules, campaign_admin_emails, stale_after
from ..staff_text import error_stored, stored, stored_sentence, what_to_check
from ..values.formatting import format_money
from .audit import audit_record
from .locking import owned_locks_acquire, owned_locks_release
from .pipeline import (
    CallCrashed,
    Outcome,
    call_finished,
    operation_log_many,
    operation_log_row,
    provider_call,
)

logger = logging.getLogger(__name__)

# The one-campaign task's time limits sit above the slowest HTTP call a campaign may be
# configured for (Campaign validators: connect ≤ 60 s, read ≤ 120 s); chunk tasks get theirs
# from chunk_time_limits(), and every poll lock outlives its task's hard limit.
POLL_SOFT_TIME_LIMIT = 60 + 120 + 30
POLL_TIME_LIMIT = POLL_SOFT_TIME_LIMIT + 30
#: An alert's e-mail is tried at most this many times (once per poll) when sending fails.
EMAIL_MAX_ATTEMPTS = 5
#: A claimed alert e-mail not confirmed as sent after this long is claimed again (see
#: stock_alerts_notify); far above the few seconds a send takes.
EMAIL_CLAIM_LEASE = timedelta(minutes=10)
#: Deleting history in batches keeps each statement short on a busy table.
CLEANUP_BATCH = 2000


#: Why a misconfigured or stale alert is resolved (stored as a sentence, shown in the reader's language).
POLL_SUCCEEDED_AGAIN = gettext_lazy("A poll succeeded again.")


class StockAnswerInvalid(ProviderError):
    """The availability answer arrived but cannot be trusted (negative or missing counts, no list).

    Recorded as a failed poll; never turned into stock levels, so it cannot raise a false alert.
    """

    default_message = gettext_lazy("The provider's stock answer could not be used.")


class PollCrashed(CallCrashed):
    """Something other than a provider error broke the poll (a bug, a time limit). Logged in full."""

    default_message = gettext_lazy("The stock poll failed unexpectedly; the details are in the server log.")


@dataclass(frozen=True)
class PollResult:
    """What one poll did. ``retryable`` asks the task to try again soon with backoff."""

    status: str  # "succeeded", "failed", "skipped" (not a live Allsafe campaign), "busy" (another poll runs)
    error_code: str = ""
    retryable: bool = False
    retry_at: datetime | None = None
    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    emails_sent: int = 0
    #: The provider error of a failed poll, for callers that show it (never serialised).
    error: ProviderError | None = field(default=None, compare=False, repr=False)


# --- Thresholds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdOverride:
    vendor: str
    value: Decimal | None
    threshold: int


def stock_thresholds_save(
    *, campaign: Campaign, actor, default_threshold: int, overrides: Iterable[ThresholdOverride]
) -> None:
    """Replace the campaign's default threshold and its overrides, with one audit event.

    The new thresholds apply from the next poll on; alerts are re-evaluated there, not here, so
    the e-mail path stays in one place (the poll). Open low-stock alerts take the new threshold
    at once, so their text never quotes one that no longer applies.
    """
    overrides = list(overrides)
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        before = {
            "default": campaign.low_stock_threshold,
            "overrides": _describe_overrides(
                ThresholdOverride(r.vendor, r.value, r.threshold)
                for r in StockThreshold.objects.filter(campaign=campaign)
            ),
        }
        after = {"default": default_threshold, "overrides": _describe_overrides(overrides)}
        if before == after:
            return
        campaign.low_stock_threshold = default_threshold
        campaign.save(update_fields=["low_stock_threshold", "updated_at"])
        StockThreshold.objects.filter(campaign=campaign).delete()
        StockThreshold.objects.bulk_create(
            StockThreshold(campaign=campaign, vendor=o.vendor, value=o.value, threshold=o.threshold)
            for o in overrides
        )
        rules = ThresholdRules.for_campaign(campaign)
        for alert in StockAlert.objects.filter(
            campaign=campaign, kind=AlertKind.LOW_STOCK, state=AlertState.OPEN
        ).exclude(value=None):
            current = rules.threshold_for(alert.vendor, alert.value)
            if alert.threshold != current:
                StockAlert.objects.filter(pk=alert.pk).update(threshold=current)
        audit_record(
            actor=actor,
            action="stock.thresholds_changed",
            campaign=campaign,
            obj=campaign,
            summary=f"Low-stock thresholds of {campaign.name} changed",
            message=stored_sentence(staff_text.AUDIT_THRESHOLDS_CHANGED, campaign=campaign.name),
            data={"before": before, "after": after},
        )


def _describe_overrides(overrides: Iterable[ThresholdOverride]) -> list[str]:
    return sorted(
        f"{o.vendor} {'*' if o.value is None else f'{Decimal(o.value):.2f}'}: {o.threshold}"
        for o in overrides
    )


# --- Polling ------------------------------------------------------------------------------------
#
# The dispatcher claims due campaigns a chunk at a time and queues one poll task per chunk; the
# chunk's availability calls run on a thread pool with no database access; everything they
# found is written in one transaction (ledger rows, snapshots, levels, monitors in bulk); the
# few campaigns whose alerts must change (or whose alert e-mail is still owed) go to their own
# task, :func:`stock_poll_alerts`. docs/performance.md ("Stock polling") has the figures.


def poll_lock_key(campaign_id: int) -> str:
    """The shared-cache key of a campaign's poll lock (one poll per campaign at a time)."""
    return f"stock-poll-lock:{campaign_id}"


def chunk_time_limits(chunk_size: int, concurrency: int) -> tuple[int, int, int]:
    """(soft limit, hard limit, lock TTL) in seconds for a poll task of ``chunk_size`` campaigns.

    The calls run ``concurrency`` at a time, so the slowest possible chunk is ``waves`` rounds of
    the slowest HTTP call a campaign may be configured for; the lock outlives the hard limit so
    it cannot expire while its poll still runs (and only its owner releases it anyway).
    """
    waves = -(-max(1, chunk_size) // max(1, concurrency))
    soft = waves * (60 + 120) + 60  # + the bulk writes and the claim of the locks
    return soft, soft + 30, soft + 60


@dataclass(frozen=True)
class PollChunk:
    """What a chunk poll did: a result per campaign asked for, and the alert work it left."""

    results: dict[int, PollResult]
    #: JSON-ready items for :func:`stock_poll_alerts` (the alert task), one per campaign.
    alert_work: list[dict]


@dataclass(frozen=True)
class _Call:
    """One availability call as it came back from a pool thread (no database touched there)."""

    campaign: Campaign
    started_at: datetime
    outcome: Outcome
    finished: dict


def _call_availability(campaign: Campaign) -> _Call:
    """Runs in a pool thread: builds the client (decrypts, no query) and calls; never raises."""
    started_at = timezone.now()
    # read_retries=0: one retry layer for polls, the task's (vouchers/tasks/stock.py says why).
    outcome = provider_call(
        kind=OperationKind.POLL,
        campaign=campaign,
        call=lambda c: c.availability(),
        crashed=PollCrashed,
        read_retries=0,
    )
    return _Call(campaign, started_at, outcome, call_finished(outcome.started))


def _call_all(campaigns: list[Campaign]) -> list[_Call]:
    """The chunk's availability calls, STOCK_POLL_CONCURRENCY at a time (one alone: no thread).

    Each process has one pooled HTTP session per base URL, sized to this concurrency
    (providers/http.pool_size), so the threads reuse connections instead of opening new ones.
    """
    workers = min(settings.STOCK_POLL_CONCURRENCY, len(campaigns))
    if workers <= 1:
        return [_call_availability(c) for c in campaigns]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stock-poll") as pool:
        return list(pool.map(_call_availability, campaigns))


def _read_answer(call: _Call) -> tuple[dict | None, ProviderError | None, dict]:
    """(levels, error, response notes) of one call; a broken answer or a bug is a failed poll."""
    response: dict = {}
    error = call.outcome.error
    if error is None:
        try:
            return _levels(call.campaign, call.outcome.result, response), None, response
        except ProviderError as exc:
            error = exc
        except Exception as exc:
            logger.exception("poll call ended with an unexpected error")
            error = PollCrashed(detail=type(exc).__name__)
    logger.warning(
        "Stock poll of campaign %s failed: %s %s %s",
        call.campaign.pk,
        error.code,
        error.message,
        error.detail,
    )
    return None, error, response


def stock_poll_dispatch(*, enqueue: Callable[[list[int]], None], now: datetime | None = None) -> list[int]:
    """Claim every live Allsafe campaign whose poll is due, STOCK_POLL_CHUNK_SIZE at a time, and
    enqueue each chunk (``enqueue(campaign_ids)``) after its claim commits.

    A chunk is claimed in one transaction: ``SELECT … FOR UPDATE`` of its monitors that are
    still due, then one UPDATE moving their ``next_poll_at`` one interval ahead. A second
    dispatcher run (a slow beat, a duplicate delivery) finds the claimed ones no longer due.
    Also opens stale-data alerts for campaigns whose polls stopped succeeding, even when no poll
    task gets to run at all. Returns the ids of the campaigns enqueued.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    # Plain tuples of the few columns needed, not model instances: at 10,000 campaigns building
    # the instances was most of the dispatcher's time. Active = live and inside its dates
    # (Campaign.is_active_on), in SQL.
    rows = list(
        Campaign.objects.filter(provider=Provider.ALLSAFE, is_live=True)
        .filter(Q(starts_on__isnull=True) | Q(starts_on__lte=today))
        .filter(Q(ends_on__isnull=True) | Q(ends_on__gte=today))
        .values_list(
            "pk",
            "poll_interval_minutes",
            "stale_after_intervals",
            "stock_monitor__pk",
            "stock_monitor__next_poll_at",
            "stock_monitor__last_success_at",
            "stock_monitor__first_poll_at",
        )
        .order_by("pk")
    )
    missing = [row[0] for row in rows if row[3] is None]
    if missing:
        # First poll of these campaigns: their monitor rows, one insert (a concurrent dispatcher
        # or poll may create the same rows: ignore_conflicts).
        StockMonitor.objects.bulk_create(
            [StockMonitor(campaign_id=pk) for pk in missing], ignore_conflicts=True
        )
    due = [pk for pk, _i, _s, _m, next_poll_at, *_rest in rows if next_poll_at is None or next_poll_at <= now]
    intervals = {pk: interval for pk, interval, *_rest in rows}
    size = settings.STOCK_POLL_CHUNK_SIZE
    claimed: list[int] = []
    for start in range(0, len(due), size):
        won = _claim_chunk(due[start : start + size], intervals, now)
        if won:
            transaction.on_commit(lambda ids=won: enqueue(ids))
        claimed += won
    late = [
        pk
        for pk, interval, stale_intervals, _m, _next, last_success_at, first_poll_at in rows
        if (last_success_at or first_poll_at) is not None
        and now - (last_success_at or first_poll_at) >= timedelta(minutes=interval * stale_intervals)
    ]
    _open_stale_alerts(late, now)
    return claimed


def _create_missing_monitors(campaigns: list[Campaign]) -> None:
    """A monitor row for each campaign polled for the first time (one insert for all of them)."""
    missing = [c for c in campaigns if not hasattr(c, "stock_monitor")]
    if not missing:
        return
    # ignore_conflicts: a concurrent dispatcher or poll may create the same rows.
    StockMonitor.objects.bulk_create([StockMonitor(campaign=c) for c in missing], ignore_conflicts=True)
    monitors = {m.campaign_id: m for m in StockMonitor.objects.filter(campaign__in=missing)}
    for campaign in missing:
        campaign.stock_monitor = monitors[campaign.pk]


def _claim_chunk(ids: list[int], intervals: dict[int, int], now: datetime) -> list[int]:
    """Claim the still-due campaigns of ``ids``: the locking read and one UPDATE, one transaction."""
    with transaction.atomic():
        # Not SKIP LOCKED: a monitor is also locked for a moment by the poll recording its
        # result and by the alert task, and skipping it would delay its poll a whole interval.
        # Waiting is short, and in the lock order every writer uses (by pk) it cannot deadlock;
        # a second dispatcher waits here, then finds the rows no longer due (READ COMMITTED
        # re-checks the condition on the row it waited for).
        rows = list(
            StockMonitor.objects.select_for_update()
            .filter(campaign_id__in=ids)
            .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
            .order_by("pk")
            .values_list("pk", "campaign_id")
        )
        if not rows:
            return []
        by_interval: dict[int, list[int]] = {}
        for pk, campaign_id in rows:
            by_interval.setdefault(intervals[campaign_id], []).append(pk)
        StockMonitor.objects.filter(pk__in=[pk for pk, _id in rows]).update(
            next_poll_at=Case(
                *(
                    When(pk__in=pks, then=Value(now + timedelta(minutes=minutes)))
                    for minutes, pks in by_interval.items()
                ),
                output_field=DateTimeField(),
            )
        )
    return sorted(campaign_id for _pk, campaign_id in rows)


def _open_stale_alerts(late: list[int], now: datetime) -> None:
    """Stale-data alerts for the campaigns ``late`` (no successful poll for ``stale_after``; the
    dispatcher's part). Only those few are read in full."""
    if not late:
        return
    already = set(
        StockAlert.objects.filter(
            campaign_id__in=late, kind=AlertKind.STALE, item_key="", state=AlertState.OPEN
        ).values_list("campaign_id", flat=True)
    )
    for campaign in Campaign.objects.filter(pk__in=[pk for pk in late if pk not in already]).select_related(
        "stock_monitor"
    ):
        with transaction.atomic():
            opened = _open_stale_alert_if_due(campaign=campaign, monitor=campaign.stock_monitor, now=now)
        if opened:
            stock_alerts_notify(campaign=campaign)


def stock_poll(*, campaign_id: int) -> PollResult:
    """Poll one campaign's availability once and record what came of it, alerts and e-mail
    included, in this process (the chunk poll of one campaign, then its alert work at once).

    Idempotent and safe to run twice at once: see :func:`stock_poll_chunk`.
    """
    chunk = stock_poll_chunk([campaign_id])
    result = chunk.results[campaign_id]
    if result.status not in ("succeeded", "failed"):
        return result
    done = stock_poll_alerts(chunk.alert_work)
    opened, resolved, sent = done.get(campaign_id, ([], [], 0))
    return dataclasses.replace(result, opened=opened, resolved=resolved, emails_sent=sent)


def stock_poll_chunk(campaign_ids: list[int]) -> PollChunk:
    """Poll a chunk of campaigns once each and record what came of it.

    1. One query reads the campaigns (with their monitors); a campaign that is gone, not Allsafe
       or not active is ``skipped``.
    2. Each campaign's poll lock (shared cache, TTL above the task's hard limit) is taken in one
       round trip; a campaign whose lock someone else holds is ``busy`` and not called.
    3. The availability calls run concurrently with no transaction, lock row or query.
    4. One transaction locks the chunk's monitors and writes every ledger row, snapshot and level
       with bulk inserts and the monitors with one bulk update. A poll that started before the
       newest one recorded for its campaign must not undo what that one decided: it keeps its
       ledger row and snapshot but moves neither the monitor's times nor any alert.
    5. The locks are released, each only if it is still ours (token-checked).

    Alerts are decided afterwards by :func:`stock_poll_alerts`, for the campaigns listed in
    ``alert_work``: those whose open alerts differ from what this poll saw, whose failure opens
    one, or whose alert e-mail is still owed. The others (the steady state) cost nothing more.
    """
    wanted = list(dict.fromkeys(campaign_ids))
    results: dict[int, PollResult] = dict.fromkeys(wanted, PollResult(status="skipped"))
    campaigns = [
        c
        for c in Campaign.objects.filter(pk__in=wanted).select_related("stock_monitor").order_by("pk")
        if c.is_allsafe and c.is_active_on()
    ]
    if not campaigns:
        return PollChunk(results, [])
    _create_missing_monitors(campaigns)
    _soft, _hard, lock_ttl = chunk_time_limits(len(campaigns), settings.STOCK_POLL_CONCURRENCY)
    tokens = owned_locks_acquire([poll_lock_key(c.pk) for c in campaigns], ttl=lock_ttl)
    mine = [c for c in campaigns if poll_lock_key(c.pk) in tokens]
    for campaign in campaigns:
        if campaign not in mine:
            logger.info("Stock poll of campaign %s skipped: another poll is running", campaign.pk)
            results[campaign.pk] = PollResult(status="busy")
    try:
        calls = _call_all(mine)
        answers = [(call, *_read_answer(call)) for call in calls]
        alert_work = _record_chunk(answers, results)
    finally:
        owned_locks_release(tokens)
    return PollChunk(results, alert_work)


#: The monitor columns a poll writes (``next_poll_at`` belongs to the dispatcher).
_MONITOR_FIELDS = [
    "first_poll_at",
    "last_poll_at",
    "last_success_at",
    "consecutive_failures",
    "last_error_code",
    "last_error_message",
    "last_error_stored",
    "last_what_to_check",
]


def _record_chunk(answers, results: dict[int, PollResult]) -> list[dict]:
    """Step 4 of :func:`stock_poll_chunk`; fills ``results`` and returns the alert work."""
    alert_work: list[dict] = []
    with transaction.atomic():
        monitors = {
            m.campaign_id: m
            for m in StockMonitor.objects.select_for_update()
            .filter(campaign_id__in=[call.campaign.pk for call, *_rest in answers])
            .order_by("pk")  # one lock order for every writer: no deadlock between chunks
        }
        operations = operation_log_many(
            [
                operation_log_row(
                    campaign=call.campaign,
                    user=None,
                    kind=OperationKind.POLL,
                    finished=call.finished,
                    request_data={"call": "availability"},
                    response_data=response,
                    error=error,
                )
                for call, _levels_seen, error, response in answers
            ]
        )
        snapshots = {
            call.campaign.pk: StockSnapshot(
                campaign=call.campaign, taken_at=call.started_at, operation=operation
            )
            for (call, levels, _error, _response), operation in zip(answers, operations, strict=True)
            if levels is not None
        }
        StockSnapshot.objects.bulk_create(snapshots.values())
        StockLevel.objects.bulk_create(
            [
                StockLevel(snapshot=snapshots[call.campaign.pk], vendor=vendor, value=value, remaining=n)
                for call, levels, _error, _response in answers
                if levels is not None
                for (vendor, value), n in levels.items()
            ]
        )
        current = []  # (call, levels, error, outdated)
        steady: dict[int, datetime] = {}  # monitor pk → poll time, for the common case below
        for call, levels, error, _response in answers:
            monitor = monitors[call.campaign.pk]
            started_at = call.started_at
            outdated = monitor.last_poll_at is not None and monitor.last_poll_at > started_at
            if levels is not None and not outdated and monitor.first_poll_at is not None:
                steady[monitor.pk] = started_at
            monitor.first_poll_at = monitor.first_poll_at or started_at
            if not outdated:
                monitor.last_poll_at = started_at
            if levels is not None:
                if not outdated:
                    monitor.last_success_at = started_at
                    monitor.consecutive_failures = 0
                    monitor.last_error_code = ""
                    monitor.last_error_message = ""
                    monitor.last_error_stored = {}
                    monitor.last_what_to_check = []
            else:
                monitor.consecutive_failures += 1
                monitor.last_error_code = error.code
                # Stored as codes / English sentences, whoever's language the poll ran in (a
                # German admin's refresh): shown in the reader's language.
                last_error = error_stored(error)
                with translation.override("en"):
                    checks = what_to_check(error)
                monitor.last_error_message = last_error["text"]
                monitor.last_error_stored = last_error
                monitor.last_what_to_check = checks
            results[call.campaign.pk] = _poll_result(error)
            current.append((call, levels, error, outdated))
        _save_monitors(monitors.values(), steady)
        alert_work = _alert_work(current, monitors, snapshots)
    return alert_work


def _save_monitors(monitors: Iterable[StockMonitor], steady: dict[int, datetime]) -> None:
    """Write the chunk's monitors: the common case (a success after earlier polls: only the two
    times differ from row to row) as one UPDATE with one CASE, the rest with ``bulk_update``.

    ``bulk_update`` alone builds a CASE per column per row (eight columns): most of a chunk's
    CPU time in the worker, for values that are the same in almost every row.
    """
    if steady:
        when = Case(*(When(pk=pk, then=Value(at)) for pk, at in steady.items()), output_field=DateTimeField())
        StockMonitor.objects.filter(pk__in=list(steady)).update(
            last_poll_at=when,
            last_success_at=when,
            consecutive_failures=0,
            last_error_code="",
            last_error_message="",
            last_error_stored={},
            last_what_to_check=[],
        )
    rest = [m for m in monitors if m.pk not in steady]
    if rest:
        StockMonitor.objects.bulk_update(rest, _MONITOR_FIELDS)


def _poll_result(error: ProviderError | None) -> PollResult:
    if error is None:
        return PollResult(status="succeeded")
    return PollResult(
        status="failed",
        error_code=error.code,
        retryable=isinstance(error, ProviderUnavailable | RateLimited),
        retry_at=getattr(error, "retry_at", None),
        error=error,
    )


def _alert_work(
    current, monitors: dict[int, StockMonitor], snapshots: dict[int, StockSnapshot]
) -> list[dict]:
    """The campaigns whose alerts this chunk's polls change, or whose alert e-mail is owed.

    Decided in memory from the chunk's open alerts and thresholds (two queries for the chunk)
    with the same rules :func:`stock_poll_alerts` applies; it re-decides everything under the
    monitor's lock, so this only has to be sure never to leave out a campaign that needs it.
    """
    now = timezone.now()
    campaigns = [call.campaign for call, *_rest in current]
    open_alerts: dict[int, dict[tuple[str, str], StockAlert]] = {c.pk: {} for c in campaigns}
    for alert in StockAlert.objects.filter(campaign__in=campaigns, state=AlertState.OPEN).only(
        "campaign_id",
        "kind",
        "item_key",
        "remaining",
        "threshold",
        "emailed_at",
        "email_recipients",
        "email_attempts",
    ):
        open_alerts[alert.campaign_id][(alert.kind, alert.item_key)] = alert
    rules = ThresholdRules.for_campaigns(
        [call.campaign for call, levels, _error, outdated in current if levels and not outdated]
    )
    work = []
    for call, levels, error, outdated in current:
        campaign = call.campaign
        alerts = open_alerts[campaign.pk]
        mail_owed = any(_mail_owed(alert, now) for alert in alerts.values())
        change = not outdated and (
            _levels_change_alerts(levels, alerts, rules.get(campaign.pk))
            if levels is not None
            else _failure_opens_alert(campaign, error, monitors[campaign.pk], alerts, call.started_at)
        )
        if change or mail_owed:
            snapshot = snapshots.get(campaign.pk)
            work.append(
                {
                    "campaign": campaign.pk,
                    "sync": change,
                    "taken_at": call.started_at.isoformat(),
                    "snapshot": snapshot.pk if snapshot else None,
                    "misconfigured": isinstance(error, AuthFailed | Misconfigured),
                    # The monitor's stored error (written above, in English, as a code): the
                    # alert task renders nothing itself, so the reader's language decides later.
                    "message": monitors[campaign.pk].last_error_stored if error is not None else {},
                    "what_to_check": list(monitors[campaign.pk].last_what_to_check or [])
                    if error is not None
                    else [],
                }
            )
    return work


def _mail_owed(alert: StockAlert, now: datetime) -> bool:
    """The candidates of :func:`stock_alerts_notify`: never mailed, or a claim never confirmed."""
    if alert.email_attempts >= EMAIL_MAX_ATTEMPTS:
        return False
    return alert.emailed_at is None or (
        alert.emailed_at < now - EMAIL_CLAIM_LEASE and alert.email_recipients == 0
    )


def _levels_change_alerts(levels: dict, alerts: dict, rules: ThresholdRules | None) -> bool:
    """Whether :func:`_sync_item_alerts` (and the resolutions after a success) would change anything."""
    if (AlertKind.MISCONFIGURED, "") in alerts or (AlertKind.STALE, "") in alerts:
        return True
    for (vendor, value), remaining in levels.items():
        key = stock_item_key(vendor, value)
        threshold = rules.threshold_for(vendor, value)
        wanted = wanted_item_alert(remaining, threshold)
        if any(kind != wanted and (kind, key) in alerts for kind in ITEM_ALERT_KINDS):
            return True
        if wanted is None:
            continue
        alert = alerts.get((wanted, key))
        if alert is None or (alert.remaining, alert.threshold) != (remaining, threshold):
            return True
    return False


def _failure_opens_alert(campaign, error, monitor: StockMonitor, alerts: dict, now: datetime) -> bool:
    """Whether a failed poll opens a misconfigured or a stale-data alert."""
    if isinstance(error, AuthFailed | Misconfigured) and (AlertKind.MISCONFIGURED, "") not in alerts:
        return True
    since = monitor.last_success_at or monitor.first_poll_at
    return since is not None and now - since >= stale_after(campaign) and (AlertKind.STALE, "") not in alerts


def stock_poll_alerts(work: list[dict]) -> dict[int, tuple[list[int], list[int], int]]:
    """Open and resolve the alerts the chunk polls in ``work`` call for, then send their e-mail.

    Per campaign one short transaction under its monitor's lock, with the rules the poll itself
    used to apply: a success matches the item alerts to the snapshot's levels and resolves
    misconfigured and stale-data alerts; an auth or configuration failure opens a misconfigured
    alert; a failure past the stale limit opens a stale-data alert. A poll that is no longer the
    newest of its campaign changes nothing (the newer one decides). Then the owed e-mails go out
    (:func:`stock_alerts_notify`). Returns campaign id → (opened, resolved, e-mails sent).
    """
    if not work:
        return {}
    campaigns = Campaign.objects.in_bulk([item["campaign"] for item in work])
    done: dict[int, tuple[list[int], list[int], int]] = {}
    for item in work:
        campaign = campaigns.get(item["campaign"])
        if campaign is None:
            continue
        opened: list[int] = []
        resolved: list[int] = []
        if item["sync"]:
            with transaction.atomic():
                _sync_poll_alerts(campaign, item, opened, resolved)
        done[campaign.pk] = (opened, resolved, stock_alerts_notify(campaign=campaign))
    return done


def _sync_poll_alerts(campaign: Campaign, item: dict, opened: list[int], resolved: list[int]) -> None:
    monitor = StockMonitor.objects.select_for_update().filter(campaign=campaign).first()
    taken_at = datetime.fromisoformat(item["taken_at"])
    if monitor is None or monitor.last_poll_at != taken_at:
        return  # a newer poll has been recorded since: its own alert work decides
    open_keys = set(
        StockAlert.objects.filter(campaign=campaign, state=AlertState.OPEN).values_list("kind", "item_key")
    )
    if item["snapshot"] is not None:
        levels: dict[tuple[str, Decimal], int] = {
            (level.vendor, level.value): level.remaining
            for level in StockLevel.objects.filter(snapshot_id=item["snapshot"])
        }
        _sync_item_alerts(campaign, levels, taken_at, opened, resolved, open_keys)
        for kind in (AlertKind.MISCONFIGURED, AlertKind.STALE):
            if (kind, "") in open_keys:
                resolved += _resolve_alerts(
                    campaign, kind=kind, item_key="", now=taken_at, why=stored_sentence(POLL_SUCCEEDED_AGAIN)
                )
        return
    if item["misconfigured"]:
        alert = _open_alert(
            campaign,
            kind=AlertKind.MISCONFIGURED,
            now=taken_at,
            message=(item["message"] or {}).get("text", ""),
            what_to_check=item["what_to_check"],
            stored_message=item["message"] or None,
        )
        opened += [alert.pk] if alert else []
    alert = _open_stale_alert_if_due(campaign=campaign, monitor=monitor, now=taken_at)
    opened += [alert.pk] if alert else []


def _levels(campaign: Campaign, availability, response: dict) -> dict[tuple[str, Decimal], int]:
    """Remaining stock per (vendor, value) from one answer; notes what came in ``response``."""
    response["raw_excerpt"] = _excerpt(getattr(availability, "raw", None))
    if getattr(availability, "nothing_left", False):
        # Allsafe's 204: success with nothing to list. Every voucher type the campaign had
        # is now at 0, so out-of-stock alerts open and the poll counts as a success.
        levels = dict.fromkeys(_last_known_types(campaign), 0)
        response["nothing_left"] = True
    else:
        levels = _validated_levels(availability)
    response["items"] = [[vendor, f"{value:.2f}", n] for (vendor, value), n in sorted(levels.items())]
    return levels


def _validated_levels(availability) -> dict[tuple[str, Decimal], int]:
    """Remaining stock per (vendor, value), or StockAnswerInvalid naming what is wrong.

    The real client already parses the wire format (providers.md); this is the service's own
    defence: one bad item fails the whole poll, because a half-read answer could report a voucher
    type as gone when it is not.
    """
    items = getattr(availability, "items", None)
    if not isinstance(items, list | tuple):
        raise StockAnswerInvalid(_("The answer holds no list of vouchers."))
    if not items:
        raise StockAnswerInvalid(
            _(
                "The provider listed no vouchers at all. This is not treated as out of stock; "
                "check the campaign's vaults in the Allsafe portal if it persists."
            )
        )
    levels: dict[tuple[str, Decimal], int] = {}
    for number, item in enumerate(items, start=1):
        vendor = getattr(item, "vendor", None)
        if not isinstance(vendor, str) or not vendor.strip() or len(vendor.strip()) > 120:
            raise StockAnswerInvalid(_("Item %(n)d has no usable vendor name.") % {"n": number})
        vendor = vendor.strip()
        value = _positive_money(getattr(item, "value", None))
        if value is None:
            raise StockAnswerInvalid(
                _("Item %(n)d (%(vendor)s) has no usable value.") % {"n": number, "vendor": vendor}
            )
        remaining = getattr(item, "remaining", None)
        if isinstance(remaining, bool) or not isinstance(remaining, int):
            raise StockAnswerInvalid(
                _("Item %(n)d (%(vendor)s %(value)s) has no whole-number count of vouchers left.")
                % {"n": number, "vendor": vendor, "value": value}
            )
        if remaining < 0 or remaining > 2_000_000_000:
            raise StockAnswerInvalid(
                _("Item %(n)d (%(vendor)s %(value)s) has an impossible count of vouchers left: %(count)d.")
                % {"n": number, "vendor": vendor, "value": value, "count": remaining}
            )
        # The same voucher type in two vaults is listed twice: what the campaign can hand out is the sum.
        levels[(vendor, value)] = levels.get((vendor, value), 0) + remaining
    return levels


def _last_known_types(campaign: Campaign) -> list[tuple[str, Decimal]]:
    """The (vendor, value) pairs of the campaign's newest snapshot that listed any."""
    snapshot = (
        StockSnapshot.objects.filter(campaign=campaign, levels__isnull=False)
        .order_by("-taken_at", "-id")
        .first()
    )
    if snapshot is None:
        return []
    return sorted({(level.vendor, level.value) for level in snapshot.levels.all()})


def _positive_money(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if (
        not amount.is_finite()
        or amount <= 0
        or amount >= Decimal("1e10")
        or amount != amount.quantize(Decimal("0.01"))
    ):
        return None
    return amount.quantize(Decimal("0.01"))


def _excerpt(raw) -> str:
    try:
        text = json.dumps(raw, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(raw)
    return text[:2000]


# --- Alerts -------------------------------------------------------------------------------------


def _sync_item_alerts(
    campaign: Campaign,
    levels: dict[tuple[str, Decimal], int],
    now: datetime,
    opened: list[int],
    resolved: list[int],
    open_keys: set[tuple[str, str]],
) -> None:
    """Open or resolve low-stock and out-of-stock alerts so they match the levels just seen.

    One open alert per item: out of stock (nothing left) supersedes low stock (fewer than the
    threshold, at least one), so an item at 0 has only its out-of-stock alert open. Resolutions
    come before openings, so the moment an item goes from low to empty the low alert is resolved
    as superseded and the out-of-stock one opened. An alert that stays open is brought up to date
    (remaining, threshold), because its text is rendered from those figures. An item missing from
    this answer keeps its alerts unchanged: absence is not proof of zero. ``open_keys``: (kind,
    item key) of the campaign's open alerts, read under the monitor's lock; the partial unique
    constraint still decides every race.
    """
    rules = ThresholdRules.for_campaign(campaign)
    for (vendor, value), remaining in sorted(levels.items()):
        key = stock_item_key(vendor, value)
        threshold = rules.threshold_for(vendor, value)
        wanted = wanted_item_alert(remaining, threshold)
        for kind in ITEM_ALERT_KINDS:
            if kind != wanted and (kind, key) in open_keys:
                if kind == AlertKind.LOW_STOCK and wanted == AlertKind.OUT_OF_STOCK:
                    why = stored_sentence(gettext_lazy("Superseded: none are left (out of stock)."))
                else:
                    why = stored_sentence(
                        gettext_lazy("%(remaining)d left (threshold %(threshold)d)."),
                        remaining=remaining,
                        threshold=threshold,
                    )
                resolved += _resolve_alerts(campaign, kind=kind, item_key=key, now=now, why=why)
        if wanted is None:
            continue
        if (wanted, key) in open_keys:
            StockAlert.objects.filter(
                campaign=campaign, kind=wanted, item_key=key, state=AlertState.OPEN
            ).exclude(remaining=remaining, threshold=threshold).update(
                remaining=remaining, threshold=threshold
            )
            continue
        message = stock_item_message(
            kind=wanted,
            vendor=vendor,
            value=format_money(value, campaign.currency),
            remaining=remaining,
            threshold=threshold,
        )
        alert = _open_alert(
            campaign,
            kind=wanted,
            now=now,
            vendor=vendor,
            value=value,
            remaining=remaining,
            threshold=threshold,
            message=message,
            stored_message=stock_item_stored(
                kind=wanted,
                vendor=vendor,
                value=value,
                currency=campaign.currency,
                remaining=remaining,
                threshold=threshold,
            ),
        )
        if alert:
            opened.append(alert.pk)


def _open_alert(
    campaign: Campaign,
    *,
    kind: str,
    now: datetime,
    message: str,
    vendor: str = "",
    value: Decimal | None = None,
    remaining: int | None = None,
    threshold: int | None = None,
    what_to_check: list[str] | None = None,
    stored_message: dict | None = None,
) -> StockAlert | None:
    """Insert an open alert unless one of this kind is already open for the item; None if it was.

    The savepoint makes the losing INSERT of a race roll back alone; the partial unique constraint
    is what decides, not the check a caller may have made before.
    """
    try:
        with transaction.atomic():
            alert = StockAlert.objects.create(
                campaign=campaign,
                kind=kind,
                item_key=stock_item_key(vendor, value),
                vendor=vendor,
                value=value,
                remaining=remaining,
                threshold=threshold,
                message=message,
                message_stored=stored_message or {},
                what_to_check=what_to_check or [],
                opened_at=now,
            )
            audit_record(
                actor=None,
                action="stock.alert_opened",
                campaign=campaign,
                obj=alert,
                # English (the audit search); the stored message below is shown in the reader's.
                summary=f"{kind_label(alert)['text']} alert opened for {campaign.name}: "
                f"{(stored_message or {}).get('text') or message}",
                message=stored(
                    "stock.alert_opened",
                    kind=kind_label(alert),
                    campaign=campaign.name,
                    # Plain text: translated when read if it is a catalogue sentence.
                    message=stored_message or stored_sentence(message),
                ),
                data={"kind": kind, "vendor": vendor, "value": str(value or ""), "remaining": remaining},
            )
    except IntegrityError:
        return None
    return alert


def _resolve_alerts(
    campaign: Campaign, *, kind: str, item_key: str, now: datetime, why: str | dict
) -> list[int]:
    """Resolve the open alert of ``kind`` for the item (if any), with a conditional UPDATE.

    ``why``: text, or a stored sentence (its English text goes into the alert's resolution).
    """
    why_text = why["text"] if isinstance(why, dict) else why
    ids = list(
        StockAlert.objects.filter(
            campaign=campaign, kind=kind, item_key=item_key, state=AlertState.OPEN
        ).values_list("pk", flat=True)
    )
    done = []
    for pk in ids:
        if StockAlert.objects.filter(pk=pk, state=AlertState.OPEN).update(
            state=AlertState.RESOLVED,
            resolved_at=now,
            resolution=why_text,
            resolution_message=why if isinstance(why, dict) else {},
        ):
            alert = StockAlert.objects.get(pk=pk)
            audit_record(
                actor=None,
                action="stock.alert_resolved",
                campaign=campaign,
                obj=alert,
                summary=f"{kind_label(alert)['text']} alert resolved for {campaign.name}: {why_text}",
                message=stored(
                    "stock.alert_resolved",
                    kind=kind_label(alert),
                    campaign=campaign.name,
                    message=why if isinstance(why, dict) else stored_sentence(why),
                ),
                data={"kind": kind, "vendor": alert.vendor, "value": str(alert.value or "")},
            )
            done.append(pk)
    return done


def kind_label(alert: StockAlert) -> dict:
    """The alert kind's label as a stored sentence: shown in the reader's language."""
    return stored_sentence(AlertKind(alert.kind).label)


def _open_stale_alert_if_due(
    *, campaign: Campaign, monitor: StockMonitor, now: datetime
) -> StockAlert | None:
    """A stale-data alert once no poll has succeeded for ``stale_after_intervals`` intervals."""
    since = monitor.last_success_at or monitor.first_poll_at
    if since is None or now - since < stale_after(campaign):
        return None
    if StockAlert.objects.filter(
        campaign=campaign, kind=AlertKind.STALE, item_key="", state=AlertState.OPEN
    ).exists():
        return None
    # Stored as a code with parameters (the page renders it in the reader's language); the
    # English text goes into ``message`` for CSV, the admin and the audit search.
    stored_message = stale_alert_stored(monitor)
    return _open_alert(
        campaign,
        kind=AlertKind.STALE,
        now=now,
        message=stored_message["text"],
        what_to_check=list(monitor.last_what_to_check or []),
        stored_message=stored_message,
    )


def stock_alerts_notify(*, campaign: Campaign) -> int:
    """E-mail the campaign's admins about open alerts not e-mailed yet; returns messages sent.

    Each alert is claimed by a conditional UPDATE of ``emailed_at`` (compare-and-set on the value
    read) before sending, so two workers never both mail it. A failed send releases the claim for
    the next poll to try again. A claim whose sending was never confirmed (the worker died between
    claim and send, or no admin had an address yet) is taken over after ``EMAIL_CLAIM_LEASE``:
    an alert is rather mailed twice than never. At most ``EMAIL_MAX_ATTEMPTS`` tries. One message
    per recipient: admins do not see each other's address.
    """
    now = timezone.now()
    unconfirmed = Q(emailed_at__lt=now - EMAIL_CLAIM_LEASE, email_recipients=0)
    candidates = list(
        StockAlert.objects.filter(
            Q(emailed_at__isnull=True) | unconfirmed,
            campaign=campaign,
            state=AlertState.OPEN,
            email_attempts__lt=EMAIL_MAX_ATTEMPTS,
        ).order_by("opened_at", "pk")
    )
    claimed = [
        alert
        for alert in candidates
        if StockAlert.objects.filter(pk=alert.pk, emailed_at=alert.emailed_at, email_recipients=0).update(
            emailed_at=now, email_attempts=F("email_attempts") + 1
        )
    ]
    if not claimed:
        return 0
    recipients = campaign_admin_emails(campaign)
    if not recipients:
        logger.warning("Stock alerts of campaign %s: no campaign admin with an e-mail address", campaign.pk)
        return 0
    # Recipients have no stored language; the e-mail is in the portal's default language
    # (settings.LANGUAGE_CODE), the same whichever process or request happens to send it.
    with translation.override(settings.LANGUAGE_CODE):
        if len(claimed) == 1:
            subject = _("Stock alert for %(campaign)s: %(kind)s") % {
                "campaign": campaign.name,
                "kind": claimed[0].get_kind_display(),
            }
        else:
            subject = _("%(count)d stock alerts for %(campaign)s") % {
                "count": len(claimed),
                "campaign": campaign.name,
            }
        body = render_to_string("vouchers/stock_alert_email.txt", {"campaign": campaign, "alerts": claimed})
    messages = [
        EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[address])
        for address in recipients
    ]
    try:
        sent = get_connection().send_messages(messages) or 0
    except Exception:
        logger.exception(
            "Stock alert e-mail for campaign %s could not be sent; retried at the next poll", campaign.pk
        )
        StockAlert.objects.filter(pk__in=[a.pk for a in claimed]).update(emailed_at=None)
        return 0
    StockAlert.objects.filter(pk__in=[a.pk for a in claimed]).update(email_recipients=len(recipients))
    return sent


# --- History ------------------------------------------------------------------------------------


def stock_history_cleanup(*, now: datetime | None = None) -> int:
    """Delete snapshots (and their levels) older than ``STOCK_HISTORY_DAYS``; returns how many.

    Idempotent; deletes in batches so no statement holds locks for long. Alerts are kept: they are
    few and they are the record of what people were told.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.STOCK_HISTORY_DAYS)
    deleted = 0
    while True:
        batch = list(
            StockSnapshot.objects.filter(taken_at__lt=cutoff).values_list("pk", flat=True)[:CLEANUP_BATCH]
        )
        if not batch:
            return deleted
        with transaction.atomic():
            StockLevel.objects.filter(snapshot_id__in=batch).delete()
            StockSnapshot.objects.filter(pk__in=batch).delete()
        deleted += len(batch)
