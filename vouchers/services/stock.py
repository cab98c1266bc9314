"""Stock monitoring of Allsafe campaigns: polling, history, thresholds and alerts.

Who calls what:
- the beat entry runs :func:`stock_poll_dispatch` every minute; it claims every live Allsafe
  campaign whose poll is due and enqueues one poll task per campaign (fan-out);
- each poll task runs :func:`stock_poll`: one ``availability`` call with no transaction held, then
  one short transaction that writes the ledger row, the snapshot and the alert changes;
- :func:`stock_history_cleanup` deletes history older than ``STOCK_HISTORY_DAYS``.

Alerts are never duplicated: opening one is an INSERT guarded by the partial unique constraint
``stock_alert_one_open_per_item`` (the loser gets IntegrityError and does nothing), and its e-mail
is claimed with a conditional UPDATE of ``emailed_at`` before it is sent.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F, Q
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
from .pipeline import CallCrashed, operation_log, provider_call

logger = logging.getLogger(__name__)

# Task time limits sit above the slowest HTTP call a campaign may be configured for
# (Campaign validators: connect ≤ 60 s, read ≤ 120 s); the poll lock outlives the hard limit so
# it can never expire while its poll still runs.
POLL_SOFT_TIME_LIMIT = 60 + 120 + 30
POLL_TIME_LIMIT = POLL_SOFT_TIME_LIMIT + 30
POLL_LOCK_SECONDS = POLL_TIME_LIMIT + 30
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


def stock_poll_dispatch(*, enqueue: Callable[[int], None], now: datetime | None = None) -> list[int]:
    """Claim every live Allsafe campaign whose poll is due and enqueue its poll after commit.

    A campaign is claimed by moving its ``next_poll_at`` one interval ahead with a conditional
    UPDATE, so a second dispatcher run in the same minute (a slow beat, a duplicate delivery) finds
    nothing to claim. Also opens stale-data alerts for campaigns whose polls stopped succeeding,
    even when no poll task gets to run at all. Returns the ids of the campaigns enqueued.
    """
    now = now or timezone.now()
    campaigns = [
        c
        for c in Campaign.objects.filter(provider=Provider.ALLSAFE, is_live=True).select_related(
            "stock_monitor"
        )
        if c.is_active_on(timezone.localdate(now))
    ]
    claimed: list[int] = []
    for campaign in campaigns:
        monitor = _monitor_for(campaign)
        if monitor.next_poll_at is not None and monitor.next_poll_at > now:
            continue
        interval = timedelta(minutes=campaign.poll_interval_minutes)
        with transaction.atomic():
            won = StockMonitor.objects.filter(pk=monitor.pk, next_poll_at=monitor.next_poll_at).update(
                next_poll_at=now + interval
            )
            if won:
                transaction.on_commit(lambda pk=campaign.pk: enqueue(pk))
                claimed.append(campaign.pk)
    for campaign in campaigns:
        monitor = campaign.stock_monitor
        with transaction.atomic():
            opened = _open_stale_alert_if_due(campaign=campaign, monitor=monitor, now=now)
        if opened:
            stock_alerts_notify(campaign=campaign)
    return claimed


def stock_poll(*, campaign_id: int) -> PollResult:
    """Poll one campaign's availability once and record what came of it.

    Idempotent and safe to run twice at once: a cache lock (``cache.add`` with a TTL above the
    task's hard time limit) lets only one poll per campaign call the provider at a time; the
    other returns ``busy``. The provider is called with no transaction or lock held. The result is
    written in one short transaction that locks the campaign's monitor row and skips the alert
    evaluation if a newer poll has already been recorded.
    """
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or not campaign.is_allsafe or not campaign.is_active_on():
        return PollResult(status="skipped")
    lock_key = f"stock-poll-lock:{campaign.pk}"
    if not cache.add(lock_key, uuid.uuid4().hex, timeout=POLL_LOCK_SECONDS):
        logger.info("Stock poll of campaign %s skipped: another poll is running", campaign.pk)
        return PollResult(status="busy")
    try:
        result = _poll_locked(campaign)
    finally:
        cache.delete(lock_key)
    if result.status in ("succeeded", "failed"):
        sent = stock_alerts_notify(campaign=campaign)
        result = dataclasses.replace(result, emails_sent=sent)
    return result


def _poll_locked(campaign: Campaign) -> PollResult:
    started_at = timezone.now()
    response: dict = {}
    # A broken answer or a bug must end as a failed poll, never a dead task.
    outcome = provider_call(
        kind=OperationKind.POLL,
        campaign=campaign,
        call=lambda c: _levels(campaign, c.availability(), response),
        crashed=PollCrashed,
    )
    levels, error = outcome.result, outcome.error
    if error is not None:
        logger.warning(
            "Stock poll of campaign %s failed: %s %s %s", campaign.pk, error.code, error.message, error.detail
        )
    with transaction.atomic():
        # One query in the steady state; the first poll of a campaign creates its monitor.
        monitor = StockMonitor.objects.select_for_update().filter(campaign=campaign).first()
        if monitor is None:
            monitor = StockMonitor.objects.select_for_update().get(pk=_monitor_for(campaign).pk)
        operation = operation_log(
            campaign=campaign,
            user=None,
            kind=OperationKind.POLL,
            started=outcome.started,
            request_data={"call": "availability"},
            response_data=response,
            error=error,
        )
        # A poll that started before the newest recorded one must not undo what that one decided.
        outdated = monitor.last_poll_at is not None and monitor.last_poll_at > started_at
        monitor.first_poll_at = monitor.first_poll_at or started_at
        if not outdated:
            monitor.last_poll_at = started_at
        opened: list[int] = []
        resolved: list[int] = []
        if levels is not None:
            snapshot = StockSnapshot.objects.create(
                campaign=campaign, taken_at=started_at, operation=operation
            )
            StockLevel.objects.bulk_create(
                StockLevel(snapshot=snapshot, vendor=vendor, value=value, remaining=n)
                for (vendor, value), n in levels.items()
            )
            if not outdated:
                monitor.last_success_at = started_at
                monitor.consecutive_failures = 0
                monitor.last_error_code = ""
                monitor.last_error_message = ""
                monitor.last_error_stored = {}
                monitor.last_what_to_check = []
                open_keys = set(
                    StockAlert.objects.filter(campaign=campaign, state=AlertState.OPEN).values_list(
                        "kind", "item_key"
                    )
                )
                _sync_item_alerts(campaign, levels, started_at, opened, resolved, open_keys)
                for kind in (AlertKind.MISCONFIGURED, AlertKind.STALE):
                    if (kind, "") in open_keys:
                        resolved += _resolve_alerts(
                            campaign,
                            kind=kind,
                            item_key="",
                            now=started_at,
                            why=stored_sentence(POLL_SUCCEEDED_AGAIN),
                        )
        else:
            monitor.consecutive_failures += 1
            monitor.last_error_code = error.code
            # Stored as codes / English sentences, whoever's language the poll ran in (a German
            # admin's refresh): shown in the reader's language.
            last_error = error_stored(error)
            with translation.override("en"):
                checks = what_to_check(error)
            monitor.last_error_message = last_error["text"]
            monitor.last_error_stored = last_error
            monitor.last_what_to_check = checks
            if not outdated and isinstance(error, AuthFailed | Misconfigured):
                alert = _open_alert(
                    campaign,
                    kind=AlertKind.MISCONFIGURED,
                    now=started_at,
                    message=last_error["text"],
                    what_to_check=checks,
                    stored_message=last_error,
                )
                opened += [alert.pk] if alert else []
            if not outdated:
                alert = _open_stale_alert_if_due(campaign=campaign, monitor=monitor, now=started_at)
                opened += [alert.pk] if alert else []
        monitor.save()
    if error is None:
        return PollResult(status="succeeded", opened=opened, resolved=resolved)
    retryable = isinstance(error, ProviderUnavailable | RateLimited)
    return PollResult(
        status="failed",
        error_code=error.code,
        retryable=retryable,
        retry_at=getattr(error, "retry_at", None),
        opened=opened,
        error=error,
    )


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


def _monitor_for(campaign: Campaign) -> StockMonitor:
    try:
        return campaign.stock_monitor
    except StockMonitor.DoesNotExist:
        pass
    try:
        with transaction.atomic():
            monitor, _created = StockMonitor.objects.get_or_create(campaign=campaign)
    except IntegrityError:  # created by a concurrent poll or dispatcher
        monitor = StockMonitor.objects.get(campaign=campaign)
    campaign.stock_monitor = monitor
    return monitor


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
