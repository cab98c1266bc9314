"""Form fields shared by the portal's forms."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import RangeField

from ..values.formatting import strip_grouping


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

    def validate(self, value):
        # Django's own message for NaN/Infinity carries the value as a parameter, and a
        # signalling NaN cannot be hashed: a form that gathers errors (the list filters' from/to
        # pair) then failed with a server error instead of "Enter a number".
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        super().validate(value)


class AmountRangeField(RangeField):
    """From/to amounts for list filters, both read like :class:`AmountField`."""

    def __init__(self, fields=None, *args, **kwargs):
        if fields is None:
            fields = (AmountField(required=False), AmountField(required=False))
        super().__init__(fields, *args, **kwargs)

    def compress(self, data_list):
        # Two blank-looking boxes (" ") clean to (None, None); django-filter would make that an
        # open slice and filter on it (a server error). Nothing typed means no filter.
        if not data_list or all(value is None for value in data_list):
            return None
        return super().compress(data_list)
