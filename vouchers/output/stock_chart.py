"""Geometry of the stock-over-time chart, drawn by the server as inline SVG.

No chart library and no script: the template turns these numbers into ``<polyline>`` elements
with presentation attributes (allowed by a CSP that forbids inline scripts and styles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

#: Distinguishable on white and for the common colour-vision deficiencies (Okabe-Ito).
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
#: More points than pixels only costs bytes; each series is thinned to at most this many.
MAX_POINTS = 300


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    points: str  # "x,y x,y ..." for <polyline points>
    last: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    right: int  # x of the plot's right edge
    bottom: int  # y of the plot's bottom edge
    series: list[Series]
    y_ticks: list[Tick]
    x_ticks: list[Tick]

    @property
    def is_empty(self) -> bool:
        return not self.series


def _nice_max(value: int) -> int:
    """The smallest 1, 2 or 5 times 10^n at or above ``value`` (at least 1), for round axis labels."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _thin(points: list[tuple[datetime, int]], start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """Keep the last point of each of MAX_POINTS equal time buckets (a level is a state, not a sum)."""
    if len(points) <= MAX_POINTS:
        return points
    span = (end - start).total_seconds() or 1
    buckets: dict[int, tuple[datetime, int]] = {}
    for when, remaining in points:
        buckets[min(MAX_POINTS - 1, int((when - start).total_seconds() / span * MAX_POINTS))] = (
            when,
            remaining,
        )
    return [buckets[key] for key in sorted(buckets)]


def build_chart(
    series: dict[str, list[tuple[datetime, int]]],
    *,
    start: datetime,
    end: datetime,
    width: int = 760,
    height: int = 280,
) -> Chart:
    """Scale each series (time → x, remaining → y) into an SVG of ``width`` by ``height``."""
    left, top, right, bottom = 56, 12, width - 16, height - 32
    peak = max((n for points in series.values() for _when, n in points), default=0)
    y_max = _nice_max(peak)
    span = (end - start).total_seconds() or 1

    def x(when: datetime) -> float:
        return left + (right - left) * max(0.0, min(1.0, (when - start).total_seconds() / span))

    def y(remaining: int) -> float:
        return bottom - (bottom - top) * remaining / y_max

    drawn = []
    for index, (label, points) in enumerate(sorted(series.items())):
        if not points:
            continue
        thinned = _thin(sorted(points), start, end)
        drawn.append(
            Series(
                label=label,
                color=PALETTE[index % len(PALETTE)],
                points=" ".join(f"{x(when):.1f},{y(n):.1f}" for when, n in thinned),
                last=thinned[-1][1],
            )
        )
    y_ticks = [Tick(y(y_max * i / 4), f"{round(y_max * i / 4):,}") for i in range(5)]
    long_range = (end - start).days >= 2
    x_ticks = []
    for i in range(5):
        when = timezone.localtime(start + (end - start) * i / 4)
        x_ticks.append(
            Tick(x(start + (end - start) * i / 4), when.strftime("%d.%m." if long_range else "%H:%M"))
        )
    return Chart(width, height, left, top, right, bottom, drawn, y_ticks, x_ticks)
