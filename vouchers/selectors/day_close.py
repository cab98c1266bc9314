"""Day close: what was redeemed, per campaign (a cashier's Z-report) or per cashier and day
(campaign admins). Days are LINA's days (Germany), like the desk's "today"; totals count
succeeded redeems only, and open ones (outcome unknown, needs review) are listed apart, because
they are neither money taken nor money refused yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from ..access.scoping import scope
from ..models import ProviderOperation
from ..models.ledger import OPEN_STATES, OperationKind, OperationState
from .desk import LINA_TIMEZONE, lina_today  # LINA's day, as the desk counts it

#: The longest range the admins' report covers in one go (a year of days, per cashier).
MAX_RANGE_DAYS = 366


@dataclass(frozen=True)
class CloseRow:
    day: date | None
    cashier: str
    campaign: str
    redeemed: int
    total: Decimal
    not_redeemed: int
    open: int


@dataclass(frozen=True)
class DayClose:
    date_from: date
    date_to: date
    rows: list[CloseRow]
    #: Unknown / needs-review redeems of the range, oldest first: to be settled, not counted.
    open_operations: list[ProviderOperation] = field(default_factory=list)

    @property
    def redeemed(self) -> int:
        return sum(r.redeemed for r in self.rows)

    @property
    def total(self) -> Decimal:
        return sum((r.total for r in self.rows), Decimal("0.00"))

    @property
    def not_redeemed(self) -> int:
        return sum(r.not_redeemed for r in self.rows)

    @property
    def open(self) -> int:
        return sum(r.open for r in self.rows)


def _redeems(user, date_from: date, date_to: date):
    start = datetime.combine(date_from, time.min, tzinfo=LINA_TIMEZONE)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=LINA_TIMEZONE)
    return scope(ProviderOperation.objects.filter(kind=OperationKind.REDEEM), user).filter(
        created_at__gte=start, created_at__lt=end
    )


_COUNTS = {
    "redeemed": Count("id", filter=Q(state=OperationState.SUCCEEDED)),
    "total": Sum("amount", filter=Q(state=OperationState.SUCCEEDED)),
    "not_redeemed": Count("id", filter=Q(state=OperationState.FAILED)),
    "open": Count("id", filter=Q(state__in=OPEN_STATES)),
}


def _row(values: dict, *, day=None, cashier="") -> CloseRow:
    return CloseRow(
        day=day,
        cashier=cashier,
        campaign=values["campaign__name"],
        redeemed=values["redeemed"],
        total=values["total"] or Decimal("0.00"),
        not_redeemed=values["not_redeemed"],
        open=values["open"],
    )


def today() -> date:
    return lina_today()


def cashier_day_close(*, user, day: date) -> DayClose:
    """The user's own redeems of ``day``, per campaign, with the open ones listed."""
    own = _redeems(user, day, day).filter(user=user)
    grouped = own.values("campaign__name").annotate(**_COUNTS).order_by("campaign__name")
    open_operations = list(
        own.filter(state__in=OPEN_STATES).select_related("campaign").order_by("created_at", "id")
    )
    return DayClose(day, day, [_row(v) for v in grouped], open_operations)


def campaign_day_close(*, user, date_from: date, date_to: date, campaign=None) -> DayClose:
    """Every cashier's redeems per day and campaign in the user's campaigns (admins)."""
    qs = _redeems(user, date_from, date_to)
    if campaign is not None:
        qs = qs.filter(campaign=campaign)
    grouped = (
        qs.annotate(day=TruncDate("created_at", tzinfo=LINA_TIMEZONE))
        .values("day", "user__username", "campaign__name")
        .annotate(**_COUNTS)
        .order_by("day", "campaign__name", "user__username")
    )
    rows = [_row(v, day=v["day"], cashier=v["user__username"] or "") for v in grouped]
    open_operations = list(
        qs.filter(state__in=OPEN_STATES).select_related("campaign", "user").order_by("created_at", "id")
    )
    return DayClose(date_from, date_to, rows, open_operations)
