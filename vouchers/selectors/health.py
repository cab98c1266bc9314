"""Provider health per campaign, read from the ledger: last success, recent error rate, latency.

Every provider call leaves a ProviderOperation row (ARCHITECTURE.md), so the ledger already
knows how each provider has been answering; nothing else is stored for this page.

Only errors that say something about the provider's health count as errors: it could not be
reached, answered something unreadable, did not answer in time, refused our credentials or our
request, or is rate-limiting us. A definite business "no" (unknown token, out of stock, redeem
refused) is the provider working as it should and counts as a healthy answer.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..access.scoping import campaigns_for
from ..models import Campaign, ProviderOperation
from ..models.ledger import OperationState
from ..providers import errors
from ..providers.lina import cooldown_key

#: The ledger ``error_code`` values (class names) that mean the provider (or our set-up of it)
#: is not healthy, with their short names for the page.
ERROR_LABELS = {
    cls.__name__: label
    for cls, label in (
        (errors.ProviderUnavailable, _("unreachable")),
        (errors.UnexpectedAnswer, _("unreadable answer")),
        (errors.OutcomeUnknown, _("no answer in time")),
        (errors.RateLimited, _("rate-limited")),
        (errors.ProviderMaintenance, _("in maintenance")),
        (errors.CallBudgetSpent, _("paused after failed calls")),
        (errors.AuthFailed, _("credentials refused")),
        (errors.Misconfigured, _("set-up incomplete")),
        (errors.ValidationFailed, _("request refused as malformed")),
    )
}
HEALTH_ERRORS = tuple(ERROR_LABELS)

#: Latencies are taken from at most this many of the window's latest calls (one query, bounded
#: memory even when a busy shop makes tens of thousands of calls an hour).
LATENCY_SAMPLE = 20_000


class Status:
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILING = "failing"
    IDLE = "idle"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class CampaignHealth:
    campaign: Campaign
    calls: int
    errors: int
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error_code: str
    p50_ms: int | None
    p95_ms: int | None
    open_unknown: int
    rate_limited_until: datetime | None

    @property
    def last_error_label(self) -> str:
        return str(ERROR_LABELS.get(self.last_error_code, self.last_error_code))

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None

    @property
    def status(self) -> str:
        if self.rate_limited_until is not None:
            return Status.RATE_LIMITED
        if not self.calls:
            return Status.IDLE
        rate = self.error_rate or 0.0
        if rate >= settings.PROVIDER_HEALTH_FAILING_RATE:
            return Status.FAILING
        if rate >= settings.PROVIDER_HEALTH_DEGRADED_RATE:
            return Status.DEGRADED
        return Status.HEALTHY


def percentile(sorted_values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, round(fraction * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _cooldown_until(campaign: Campaign, now: datetime) -> datetime | None:
    if not campaign.is_lina:
        return None
    try:
        until = cache.get(cooldown_key(campaign.base_url, campaign.api_username))
    except Exception:  # the page must still show the ledger's figures when the cache is down
        return None
    if isinstance(until, int | float):  # the LINA client stores a POSIX timestamp
        until = datetime.fromtimestamp(until, tz=UTC)
    return until if isinstance(until, datetime) and until > now else None


def _count(operations) -> Coalesce:
    """A correlated COUNT(*) of ``operations`` (already filtered on the outer campaign)."""
    counted = operations.order_by().values("campaign").annotate(n=Count("pk")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def provider_health_for(user, *, now: datetime | None = None) -> list[CampaignHealth]:
    """Health of every campaign ``user`` works on, over the last PROVIDER_HEALTH_WINDOW_MINUTES.

    Two queries whatever the number of campaigns: the campaigns with correlated subqueries that
    each walk a bounded range of the ledger's (campaign, created_at) index, and one bounded
    sample of durations. Last success and last error look further back than the window
    (PROVIDER_HEALTH_LOOKBACK_DAYS), so a campaign that has been failing for a day still says
    when it last worked, without reading a year of ledger to find that it never did.
    """
    now = now or timezone.now()
    since = now - timedelta(minutes=settings.PROVIDER_HEALTH_WINDOW_MINUTES)
    ops = ProviderOperation.objects.filter(campaign=OuterRef("pk"))
    finished_in_window = ops.filter(created_at__gte=since, finished_at__isnull=False)
    lookback = ops.filter(created_at__gte=now - timedelta(days=settings.PROVIDER_HEALTH_LOOKBACK_DAYS))
    health_errors = lookback.filter(error_code__in=HEALTH_ERRORS).order_by("-created_at")
    campaigns = list(
        campaigns_for(user).annotate(
            calls=_count(finished_in_window),
            errors=_count(finished_in_window.filter(error_code__in=HEALTH_ERRORS)),
            last_success_at=Subquery(
                lookback.filter(state=OperationState.SUCCEEDED)
                .order_by("-created_at")
                .values("finished_at")[:1]
            ),
            last_error_at=Subquery(health_errors.values("finished_at")[:1]),
            last_error_code=Subquery(health_errors.values("error_code")[:1]),
            open_unknown=_count(ops.filter(state__in=[OperationState.UNKNOWN, OperationState.NEEDS_REVIEW])),
        )
    )
    durations: dict[int, list[int]] = defaultdict(list)
    sample = (
        ProviderOperation.objects.filter(
            campaign__in=[c.pk for c in campaigns],
            created_at__gte=since,
            duration_ms__isnull=False,
        )
        .order_by("-created_at")
        .values_list("campaign_id", "duration_ms")[:LATENCY_SAMPLE]
    )
    for campaign_id, duration in sample:
        durations[campaign_id].append(duration)

    rows = []
    for campaign in campaigns:
        values = sorted(durations.get(campaign.pk, []))
        rows.append(
            CampaignHealth(
                campaign=campaign,
                calls=campaign.calls,
                errors=campaign.errors,
                last_success_at=campaign.last_success_at,
                last_error_at=campaign.last_error_at,
                last_error_code=campaign.last_error_code or "",
                p50_ms=percentile(values, 0.50),
                p95_ms=percentile(values, 0.95),
                open_unknown=campaign.open_unknown,
                rate_limited_until=_cooldown_until(campaign, now),
            )
        )
    return rows
