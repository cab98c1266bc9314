"""Made-up stock history for the demo campaign, so its chart and days-to-empty mean something on
the first ``make run`` instead of after a week of polling.

Only ``seed_demo`` calls this (development only). The history ends one poll interval before now
at the levels given (the sandbox's own stock), so the first real poll continues the lines.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from ..models import Campaign, StockLevel, StockSnapshot

#: A few weeks: longer than the 7-day default chart and the 7-day estimate window.
DEMO_HISTORY_DAYS = 21
DEMO_POLLS_PER_DAY = 4


def stock_demo_history(
    *,
    campaign: Campaign,
    levels: dict[tuple[str, Decimal], int],
    days: int = DEMO_HISTORY_DAYS,
    now: datetime | None = None,
) -> int:
    """Seed ``days`` of snapshots ending at ``levels``; returns how many. Does nothing (0) when
    the campaign already has history, so running the seed again neither duplicates nor rewrites
    what real polls recorded.

    Each voucher type sells a steady few per day (different per type, so the lines are told
    apart) and is restocked once, halfway: a saw-tooth with a drop in the last week, which is
    what the days-to-empty estimate needs.
    """
    if StockSnapshot.objects.filter(campaign=campaign).exists():
        return 0
    now = now or timezone.now()
    end = now - timedelta(minutes=campaign.poll_interval_minutes)
    steps = days * DEMO_POLLS_PER_DAY
    step = timedelta(days=1) / DEMO_POLLS_PER_DAY
    restock_at = steps // 2
    with transaction.atomic():
        for index in range(steps + 1):
            snapshot = StockSnapshot.objects.create(campaign=campaign, taken_at=end - step * (steps - index))
            StockLevel.objects.bulk_create(
                StockLevel(
                    snapshot=snapshot,
                    vendor=vendor,
                    value=value,
                    remaining=_remaining(final, rank, steps - index, restock_at),
                )
                for rank, ((vendor, value), final) in enumerate(sorted(levels.items()))
            )
    return steps + 1


def _remaining(final: int, rank: int, steps_before_end: int, restock_at: int) -> int:
    """Stock ``steps_before_end`` polls before the end: ``final`` plus what was sold since, with the
    restock (back up by the same amount again) before ``restock_at``."""
    per_step = 1 + rank % 3  # 4 to 12 vouchers a day
    sold_since = per_step * (
        steps_before_end if steps_before_end < restock_at else steps_before_end - restock_at
    )
    return final + sold_since
