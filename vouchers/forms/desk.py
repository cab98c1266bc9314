"""Forms of the cashier desk and of the review of unresolved operations."""

from __future__ import annotations

import re
import uuid

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .. import staff_text as messages
from ..models.ledger import OperationState
from ..values.formatting import format_amount
from ..values.parsing import parse_amount, parse_code

_REQUEST_TOKEN = re.compile(r"^[0-9a-f]{32}$")


def new_request_token() -> str:
    """The one-time token a redeem form carries; its use is recorded in a unique column."""
    return uuid.uuid4().hex


class CampaignChoiceForm(forms.Form):
    campaign = forms.ChoiceField(label=_("Campaign"))

    def __init__(self, *args, campaigns=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].choices = [(c.slug, c.name) for c in campaigns]
        self.fields["campaign"].widget.attrs["data-autosubmit"] = ""


class CheckForm(forms.Form):
    """One field for a scanner: it types the code and presses Enter."""

    code = forms.CharField(
        label=_("Token code"),
        strip=True,
        required=False,  # the empty case gets the desk's own message in clean_code
        help_text=_("16 characters; spaces, dashes and case do not matter."),
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "placeholder": "ABCD-EFGH-IJKL-MNOP",
                "class": "code",
                "data-code-input": "",
                "size": 24,
            }
        ),
    )

    def __init__(self, *args, autofocus: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not autofocus:  # a token card is open: the focus belongs to its Redeem step
            self.fields["code"].widget.attrs.pop("autofocus", None)

    def clean_code(self) -> str:
        return parse_code(self.cleaned_data.get("code"))


class RedeemForm(forms.Form):
    """Carries the checked code, the check's ledger id and a one-time request token."""

    amount = forms.CharField(
        label=_("Amount to redeem (€)"),
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "class": "money"}),
    )
    code = forms.CharField(widget=forms.HiddenInput, required=False)
    check = forms.CharField(widget=forms.HiddenInput, required=False)
    request_token = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, card=None, **kwargs):
        # Its own ids: the page also carries the check form, whose code field is "id_code".
        kwargs.setdefault("auto_id", "redeem_%s")
        super().__init__(*args, **kwargs)
        if card is not None and card.full_value_only:
            # Full-value-only tokens: the amount is fixed to the remaining value (checked again
            # on the server; readonly only spares the cashier a pointless edit).
            self.fields["amount"].widget.attrs["readonly"] = True
            self.fields["amount"].widget.attrs["class"] = "money readonly"
            self.fields["amount"].help_text = _("This token can only be redeemed in full.")
        elif card is not None:
            # Prefilled with the full remaining value: Enter redeems it all, typing changes it.
            self.fields["amount"].widget.attrs["autofocus"] = True

    @classmethod
    def for_card(cls, card) -> RedeemForm:
        remaining = card.remaining_value
        return cls(
            card=card,
            initial={
                # In the reader's notation (12,50 in German), without thousands separators.
                "amount": format_amount(remaining, grouping=False) if remaining is not None else "",
                "code": card.code,
                "check": card.operation.pk,
                "request_token": new_request_token(),
            },
        )

    def clean_amount(self):
        return parse_amount(self.cleaned_data.get("amount"))

    def clean_request_token(self) -> str:
        token = (self.cleaned_data.get("request_token") or "").strip().lower()
        if not _REQUEST_TOKEN.match(token):
            raise ValidationError(messages.CHECK_FIRST)
        return token


class ResolveForm(forms.Form):
    state = forms.ChoiceField(
        label=_("What happened at the provider?"),
        widget=forms.RadioSelect,
        choices=[
            (OperationState.SUCCEEDED, _("It went through (succeeded)")),
            (OperationState.FAILED, _("It did not go through (failed)")),
        ],
        error_messages={"required": _("Choose whether the operation went through or not.")},
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What you checked and found, e.g. the provider's back office shows the redemption."),
        error_messages={"required": _("Say why you settle it this way.")},
    )


class DeskPreferenceForm(forms.Form):
    auto_print = forms.BooleanField(
        label=_("Print the slip by itself after each redemption"),
        required=False,
        widget=forms.CheckboxInput(attrs={"data-autosubmit": ""}),
    )
    next = forms.CharField(widget=forms.HiddenInput, required=False)


class CashierCloseForm(forms.Form):
    """The cashier's day close: one day (today unless another is asked for)."""

    day = forms.DateField(label=_("Day"), required=False, widget=forms.DateInput(attrs={"type": "date"}))


class DayCloseForm(forms.Form):
    """The campaign admins' day close: a date range and, optionally, one campaign."""

    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    campaign = forms.ChoiceField(label=_("Campaign"), required=False)

    def __init__(self, *args, campaigns=(), max_days: int = 366, **kwargs):
        super().__init__(*args, **kwargs)
        self.campaigns = {c.slug: c for c in campaigns}
        self.max_days = max_days
        self.fields["campaign"].choices = [("", _("All campaigns"))] + [(c.slug, c.name) for c in campaigns]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end:
            if end < start:
                self.add_error("date_to", _("The end of the range is before its start."))
            elif (end - start).days >= self.max_days:
                self.add_error(
                    "date_to", _("Choose a range of at most %(days)d days.") % {"days": self.max_days}
                )
        cleaned["campaign"] = self.campaigns.get(cleaned.get("campaign") or "")
        return cleaned
