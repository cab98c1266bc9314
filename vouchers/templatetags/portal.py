"""Small template helpers shared by the portal's pages."""

from __future__ import annotations

import math
from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def minutes_ceil(value) -> int:
    """A timedelta (or seconds) as whole minutes, rounded up: "try again in 15 minutes"."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    else:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            return 0
    return max(0, math.ceil(seconds / 60))
