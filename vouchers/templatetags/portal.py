"""Small template helpers shared by the portal's pages."""

from __future__ import annotations

import math
from datetime import timedelta

from django import template

from ..staff_text import operation_error_text, stored_display
from ..values.formatting import CURRENCY_EUR, format_money

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


@register.filter
def money(value, currency=CURRENCY_EUR) -> str:
    """An amount with its currency (``{{ x|money:campaign.currency }}``, euro when not given) in the
    current language: ``1.234,50 €`` / ``R 1,234.50``; "—" for none."""
    return format_money(value, currency or CURRENCY_EUR) or "—"


@register.filter
def stored_text(value) -> str:
    """A stored message (alert, error, what to check) in the reader's language when it can be:
    a code with parameters (``staff_text.stored``) is rendered; plain old text is translated
    when it is a catalogue sentence, shown as stored otherwise."""
    return stored_display(value)


@register.filter
def operation_error(operation) -> str:
    """Why an operation did not go through, as staff were told it: in the reader's language, the
    provider's own words labelled as theirs; rows recorded before that show their stored text."""
    if operation.staff_text:
        return operation_error_text(operation)
    return stored_display(operation.error_message)
