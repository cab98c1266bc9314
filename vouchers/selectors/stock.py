"""Read queries of the stock pages: overview, current stock, history chart, estimates, alerts.

Every query here is limited to the campaigns the caller passes in, which the views obtain through
vouchers.access.scoping; nothing here decides who may see what.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from ..access import roles
from ..access.scoping import campaigns_for, scope
from ..models import (
    Campaign,
    Membership,
    ProviderOperation,
    StockAlert,
    StockLevel,
    StockMonitor,
    StockSnapshot,
    StockThreshold,
)
from ..models.ledger import OperationKind
from ..models.stock import AlertState, stock_item_key
from ..output.stock_chart import Chart, build_chart
from ..values.formatting import format_money

#: Consumption over this window gives the days-to-empty estimate.
ESTIMATE_WINDOW = timedelta(days=7)
#: Chart ranges a person can pick (days); anything else falls back to the default.
CHART_RANGES = (1, 7, 30)
DEFAULT_CHART_DAYS = 7


@dataclass(frozen=True)
class ThresholdRules:
    """The campaign default, overridden per vendor, overridden per vendor and value (most specific wins)."""

    default: int
    per_vendor: dict[str, int]
    per_item: dict[tuple[str, Decimal], int]

    @classmethod
    def for_campaign(cls, campaign: Campaign) -> ThresholdRules:
        per_vendor: dict[str, int] = {}
        per_item: dict[tuple[str, Decimal], int] = {}
        for rule in StockThreshold.objects.filter(campaign=campaign):
            if rule.value is None:
                per_vendor[rule.vendor.casefold()] = rule.threshold
            else:
                per_item[(rule.vendor.casefold(), rule.value)] = rule.threshold
        return cls(default=campaign.low_stock_threshold, per_vendor=per_vendor, per_item=per_item)

    @classmethod
    def for_campaigns(cls, campaigns) -> dict[int, ThresholdRules]:
        """The rules of many campaigns (campaign id → rules) from one query (a poll chunk)."""
        rules = {c.pk: cls(default=c.low_stock_threshold, per_vendor={}, per_item={}) for c in campaigns}
        for rule in StockThreshold.objects.filter(campaign_id__in=list(rules)):
            target = rules[rule.campaign_id]
            if rule.value is None:
                target.per_vendor[rule.vendor.casefold()] = rule.threshold
            else:
                target.per_item[(rule.vendor.casefold(), rule.value)] = rule.threshold
        return rules

    def threshold_for(self, vendor: str, value: Decimal) -> int:
        key = vendor.casefold()
        if (key, value) in self.per_item:
            return self.per_item[(key, value)]
        return self.per_vendor.get(key, self.default)


def stale_after(campaign: Campaign) -> timedelta:
    return timedelta(minutes=campaign.poll_interval_minutes * campaign.stale_after_intervals)


@dataclass(frozen=True)
class Health:
    """Provider health in one word for a badge, plus what a person should know."""

    state: str  # "ok", "failing", "stale", "unknown"
    css: str  # badge suffix: ok / warn / bad / muted


def health_of(campaign: Campaign, monitor: StockMonitor | None, *, now: datetime | None = None) -> Health:
    now = now or timezone.now()
    if monitor is None or monitor.last_poll_at is None:
        return Health("unknown", "muted")
    since = monitor.last_success_at or monitor.first_poll_at
    if since is not None and now - since >= stale_after(campaign):
        return Health("stale", "bad")
    if monitor.consecutive_failures:
        return Health("failing", "warn")
    return Health("ok", "ok")


def stock_campaigns_for(user) -> QuerySet[Campaign]:
    """The user's Allsafe campaigns with their monitor and open-alert counts (one query)."""
    return (
        campaigns_for(user, provider="allsafe")
        .select_related("stock_monitor")
        .annotate(
            open_alerts=Count("stock_alerts", filter=Q(stock_alerts__state=AlertState.OPEN), distinct=True)
        )
    )


def open_alerts_for(user) -> QuerySet[StockAlert]:
    return (
        scope(StockAlert.objects.filter(state=AlertState.OPEN), user)
        .select_related("campaign")
        .order_by("campaign__name", "-opened_at")
    )


@dataclass(frozen=True)
class ItemRow:
    vendor: str
    value: Decimal
    remaining: int | None  # None: listed before, missing from the latest answer
    threshold: int
    days_to_empty: float | None
    alert_kinds: tuple[str, ...]

    @property
    def state(self) -> str:
        if self.remaining is None:
            return "unlisted"
        if self.remaining == 0:
            return "out"
        if self.remaining < self.threshold:
            return "low"
        return "ok"


@dataclass(frozen=True)
class StockDetail:
    campaign: Campaign
    monitor: StockMonitor | None
    health: Health
    snapshot: StockSnapshot | None
    rows: list[ItemRow]
    chart: Chart
    chart_days: int
    open_alerts: list[StockAlert]
    recent_alerts: list[StockAlert]
    last_poll: ProviderOperation | None


def chart_days_from(raw: str | None) -> int:
    """A chart range from a query string value; anything unexpected gives the default."""
    try:
        days = int(raw or DEFAULT_CHART_DAYS)
    except (TypeError, ValueError):
        return DEFAULT_CHART_DAYS
    return days if days in CHART_RANGES else DEFAULT_CHART_DAYS


def _history(campaign: Campaign, since: datetime) -> dict[tuple[str, Decimal], list[tuple[datetime, int]]]:
    rows = (
        StockLevel.objects.filter(snapshot__campaign=campaign, snapshot__taken_at__gte=since)
        .order_by("snapshot__taken_at", "snapshot_id")
        .values_list("vendor", "value", "remaining", "snapshot__taken_at")
    )
    history: dict[tuple[str, Decimal], list[tuple[datetime, int]]] = {}
    for vendor, value, remaining, taken_at in rows:
        history.setdefault((vendor, value), []).append((taken_at, remaining))
    return history


def days_to_empty(points: list[tuple[datetime, int]]) -> float | None:
    """Days until nothing is left at the recent rate of consumption; None without consumption.

    Only decreases count as consumption: a restock between two polls is not negative use. The
    rate is what was used between the first and the last poll over the time between them, so two
    polls with a drop are enough (a minute-interval demo shows an estimate after two minutes).
    """
    if len(points) < 2:
        return None
    used = sum(max(0, before - after) for (_t1, before), (_t2, after) in itertools.pairwise(points))
    elapsed_days = (points[-1][0] - points[0][0]).total_seconds() / 86400
    if used == 0 or elapsed_days <= 0:
        return None
    return points[-1][1] / (used / elapsed_days)


def stock_detail(campaign: Campaign, *, chart_days: int = DEFAULT_CHART_DAYS) -> StockDetail:
    now = timezone.now()
    monitor = StockMonitor.objects.filter(campaign=campaign).first()
    snapshot = StockSnapshot.objects.filter(campaign=campaign).order_by("-taken_at", "-id").first()
    latest = {(lv.vendor, lv.value): lv.remaining for lv in snapshot.levels.all()} if snapshot else {}
    history = _history(campaign, min(now - timedelta(days=chart_days), now - ESTIMATE_WINDOW))
    open_alerts = list(
        StockAlert.objects.filter(campaign=campaign, state=AlertState.OPEN)
        .select_related("campaign")
        .order_by("-opened_at", "-id")
    )
    kinds_by_item: dict[str, list[str]] = {}
    for alert in open_alerts:
        kinds_by_item.setdefault(alert.item_key, []).append(alert.kind)
    rules = ThresholdRules.for_campaign(campaign)
    estimate_since = now - ESTIMATE_WINDOW
    rows = []
    for vendor, value in sorted(set(latest) | set(history)):
        remaining = latest.get((vendor, value))
        recent = [p for p in history.get((vendor, value), []) if p[0] >= estimate_since]
        rows.append(
            ItemRow(
                vendor=vendor,
                value=value,
                remaining=remaining,
                threshold=rules.threshold_for(vendor, value),
                days_to_empty=days_to_empty(recent) if remaining else None,
                alert_kinds=tuple(kinds_by_item.get(stock_item_key(vendor, value), ())),
            )
        )
    chart_since = now - timedelta(days=chart_days)
    chart = build_chart(
        {
            f"{vendor} {format_money(value, campaign.currency)}": [p for p in points if p[0] >= chart_since]
            for (vendor, value), points in history.items()
        },
        start=chart_since,
        end=now,
    )
    return StockDetail(
        campaign=campaign,
        monitor=monitor,
        health=health_of(campaign, monitor, now=now),
        snapshot=snapshot,
        rows=rows,
        chart=chart,
        chart_days=chart_days,
        open_alerts=open_alerts,
        recent_alerts=list(
            StockAlert.objects.filter(campaign=campaign, state=AlertState.RESOLVED)
            .select_related("campaign")
            .order_by("-resolved_at")[:10]
        ),
        last_poll=ProviderOperation.objects.filter(campaign=campaign, kind=OperationKind.POLL)
        .order_by("-created_at", "-id")
        .first(),
    )


def stock_vendors(campaign: Campaign) -> list[str]:
    """Vendor names seen in the campaign's latest snapshot (suggestions for the threshold form)."""
    snapshot = StockSnapshot.objects.filter(campaign=campaign).order_by("-taken_at", "-id").first()
    if snapshot is None:
        return []
    return sorted(set(snapshot.levels.values_list("vendor", flat=True)))


def campaign_admin_emails(campaign: Campaign) -> list[str]:
    """E-mail addresses of active members of the campaign who hold the Campaign admin role."""
    return sorted(
        set(
            Membership.objects.filter(
                campaign=campaign,
                user__is_active=True,
                user__groups__name=roles.CAMPAIGN_ADMIN,
            )
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
    )
