"""Form fields shared by the portal's forms."""

from __future__ import annotations

from django import forms
from django_filters.fields import RangeField

from ..formatting import strip_grouping


class AmountField(forms.DecimalField):
    """A decimal amount typed either way: "12,50" or "12.50", also "1.234,50" / "1,234.50".

    Shown localised (``localize``: 12,50 in German), and read back whichever notation a person
    used, so a value copied from a page is accepted in either language.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("localize", True)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if isinstance(value, str):
            text = strip_grouping(value.strip().replace("€", "").replace("\u00a0", "").strip())
            if "," in text and "." not in text:
                text = text.replace(",", ".")
            value = text
        return super().to_python(value)


class AmountRangeField(RangeField):
    """From/to amounts for list filters, both read like :class:`AmountField`."""

    def __init__(self, fields=None, *args, **kwargs):
        if fields is None:
            fields = (AmountField(required=False), AmountField(required=False))
        super().__init__(fields, *args, **kwargs)
