"""Forms of the stock pages: a campaign's default low-stock threshold and its overrides."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from .fields import AmountField

MAX_THRESHOLD = 1_000_000


class StockDefaultThresholdForm(forms.Form):
    default_threshold = forms.IntegerField(
        label=_("Default threshold"),
        min_value=0,
        max_value=MAX_THRESHOLD,
        help_text=_("Alert when fewer vouchers than this remain of any vendor and value. 0 switches it off."),
    )


class StockThresholdOverrideForm(forms.Form):
    vendor = forms.CharField(label=_("Vendor"), max_length=120)
    value = AmountField(
        label=_("Value"),
        required=False,
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        localize=True,
        help_text=_("Empty: every value of this vendor."),
    )
    threshold = forms.IntegerField(label=_("Threshold"), min_value=0, max_value=MAX_THRESHOLD)

    def clean_vendor(self):
        vendor = self.cleaned_data["vendor"].strip()
        if not vendor:
            raise forms.ValidationError(_("Enter the vendor's name as Allsafe lists it."))
        return vendor


class BaseOverrideFormSet(forms.BaseFormSet):
    def clean(self):
        super().clean()
        seen: dict[tuple[str, Decimal | None], int] = {}
        for index, form in enumerate(self.forms):
            if not form.has_changed() or self._should_delete_form(form) or not hasattr(form, "cleaned_data"):
                continue
            vendor, value = form.cleaned_data.get("vendor"), form.cleaned_data.get("value")
            if vendor is None:
                continue
            key = (vendor.casefold(), value)
            if key in seen:
                form.add_error(
                    "vendor",
                    _("Row %(row)d already sets a threshold for this vendor and value.")
                    % {"row": seen[key] + 1},
                )
            else:
                seen[key] = index

    def overrides(self) -> list[dict]:
        """The rows to keep: filled in, valid and not marked for deletion."""
        return [
            form.cleaned_data
            for form in self.forms
            if form.has_changed() and not self._should_delete_form(form) and form.cleaned_data
        ]


StockThresholdOverrideFormSet = forms.formset_factory(
    StockThresholdOverrideForm,
    formset=BaseOverrideFormSet,
    extra=3,
    can_delete=True,
    max_num=500,
    validate_max=True,
)
