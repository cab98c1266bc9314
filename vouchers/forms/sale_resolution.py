"""The form that settles a sale whose answer was lost: what happened, and the evidence for it."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from ..models import Sale

SOLD, NOT_SOLD = "sold", "not_sold"


class SaleResolveForm(forms.Form):
    """Gift tokens ask for the code found at LINA, digital vouchers for the voucher's details.

    ``check`` is the ledger id of the check that confirmed the code (the confirm step only)."""

    mark_optional = True  # "(optional)" after the label (templates/forms/field.html)

    outcome = forms.ChoiceField(
        label=_("What happened at the provider?"),
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose whether the sale went through or not.")},
    )
    code = forms.CharField(
        label=_("Code found at LINA"),
        required=False,
        max_length=40,
        help_text=_("As LINA's back office shows it; it is checked with LINA before anything is recorded."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "class": "code"}),
    )
    pin = forms.CharField(label=_("PIN or code"), required=False, max_length=200)
    serial = forms.CharField(label=_("Serial number"), required=False, max_length=200)
    expiry = forms.CharField(label=_("Expiry"), required=False, max_length=200)
    reason = forms.CharField(
        label=_("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What you checked and found, e.g. the sale in the provider's back office."),
        error_messages={"required": _("Say why you settle it this way.")},
    )
    check = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1, max_value=2**62)

    def __init__(self, *args, sale: Sale, **kwargs):
        super().__init__(*args, **kwargs)
        self.sale = sale
        sold = (
            _("It went through: record the code")
            if sale.is_gift_token
            else _("It went through: record the voucher")
        )
        choices = [(SOLD, sold)]
        if not sale.code_missing:  # recorded as gone through already: only the code can be added
            choices.append((NOT_SOLD, _("It did not go through (nothing sold)")))
        self.fields["outcome"].choices = choices
        if sale.is_gift_token:
            for name in ("pin", "serial", "expiry"):
                del self.fields[name]
        else:
            del self.fields["code"]
            self.fields["pin"].help_text = _("The voucher's details as the Allsafe portal shows them.")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("outcome") == SOLD:
            field = "code" if self.sale.is_gift_token else "pin"
            if not (cleaned.get(field) or "").strip():
                self.add_error(
                    field,
                    ValidationError(
                        _("Enter the code found at LINA.")
                        if field == "code"
                        else _("Enter the voucher's PIN or code as the Allsafe portal shows it.")
                    ),
                )
        return cleaned
