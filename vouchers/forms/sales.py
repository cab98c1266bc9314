"""Forms of the sales pages: sell a gift token, allocate a digital voucher, upload a bulk sale.

Every form carries a one-time ``request_token`` (hidden) made when the empty form is shown; it
becomes the ledger operation's unique request token, so a double submit sells once.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from ..models import Campaign, SaleTemplate
from ..output import bulk_csv as sales_csv
from ..services.sales import AvailabilitySnapshot, new_request_token
from ..values import sale_rules as sales_rules
from ..values.formatting import CURRENCY_ZAR, format_money
from ..values.parsing import parse_amount

_TOKEN = re.compile(r"^[0-9a-f]{32}$")


class RequestTokenField(forms.CharField):
    widget = forms.HiddenInput


class OneTimeTokenFormMixin:
    """A missing or malformed request token is replaced by a fresh one; the form asks to submit again.

    Nothing typed is lost, and the new token still protects the next submit from doubling.
    """

    def _check_request_token(self):
        if self.is_bound and not _TOKEN.match(str(self.data.get("request_token", ""))):
            self.data = self.data.copy()
            self.data["request_token"] = new_request_token()
            self._token_replaced = True
        elif not self.is_bound:
            self.initial.setdefault("request_token", new_request_token())

    def clean(self):
        cleaned = super().clean()
        if getattr(self, "_token_replaced", False):
            raise ValidationError(_("This form was incomplete. Check the values and submit it again."))
        return cleaned


class LayoutSelect(forms.Select):
    """Each layout option names the templates that allow it, so static JS can offer only those."""

    def __init__(self, *args, layout_templates: dict[str, list[int]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.layout_templates = layout_templates or {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if str(value) in self.layout_templates:
            option["attrs"]["data-templates"] = " ".join(str(pk) for pk in self.layout_templates[str(value)])
        return option


class GiftTokenSellForm(OneTimeTokenFormMixin, forms.Form):
    mark_optional = True  # "(optional)" after the label (templates/forms/field.html)

    request_token = RequestTokenField()
    amount = forms.CharField(
        label=_("Amount (€)"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "autofocus": True}),
    )
    template = forms.ModelChoiceField(label=_("Template"), queryset=SaleTemplate.objects.none())
    layout = forms.ChoiceField(label=_("Layout"), required=False)
    from_name = forms.CharField(label=_("From"), required=False, max_length=sales_rules.NAME_MAX_LENGTH)
    for_name = forms.CharField(label=_("For"), required=False, max_length=sales_rules.NAME_MAX_LENGTH)
    email = forms.CharField(
        label=_("Send to e-mail"),
        required=False,
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args, campaign: Campaign, **kwargs):
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        templates = list(SaleTemplate.objects.filter(campaign=campaign, is_active=True).order_by("name"))
        self.fields["template"].queryset = SaleTemplate.objects.filter(pk__in=[t.pk for t in templates])
        layout_templates: dict[str, list[int]] = {}
        for template in templates:
            for layout in template.layouts:
                layout_templates.setdefault(str(layout), []).append(template.pk)
        choices = [("", _("No layout"))] + [
            (key, _("Layout %(number)s") % {"number": key}) for key in sorted(layout_templates, key=int)
        ]
        self.fields["layout"].choices = choices
        self.fields["layout"].widget = LayoutSelect(choices=choices, layout_templates=layout_templates)
        self.fields["amount"].help_text = _("Between %(min)s and %(max)s.") % {
            "min": format_money(campaign.sale_min_amount),
            "max": format_money(campaign.sale_max_amount),
        }
        self._check_request_token()

    def clean_amount(self):
        amount = parse_amount(self.cleaned_data.get("amount", ""))
        return sales_rules.check_amount(self.campaign, amount)

    def clean_email(self):
        return sales_rules.check_email(self.cleaned_data.get("email", ""))

    def clean(self):
        cleaned = super().clean()
        template = cleaned.get("template")
        try:
            layout = sales_rules.parse_layout(cleaned.get("layout"))
            if template is not None:
                layout = sales_rules.check_layout(template, layout)
            cleaned["layout"] = layout
        except ValidationError as exc:
            self.add_error("layout", exc)
            return cleaned
        try:
            cleaned["from_name"], cleaned["for_name"] = sales_rules.check_names(
                layout, cleaned.get("from_name", ""), cleaned.get("for_name", "")
            )
        except ValidationError as exc:
            self.add_error("from_name", exc)
        return cleaned


def whole_if_integral(value: Decimal) -> Decimal:
    """100 rather than 100.00 for whole rand amounts (stock levels store two decimal places)."""
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


def denomination_text(value: Decimal) -> str:
    """The form's key for a denomination: 100 or 12.50, independent of the reader's language."""
    value = whole_if_integral(value)
    return str(value) if value == value.to_integral_value() else f"{value:.2f}"


class VoucherAllocateForm(OneTimeTokenFormMixin, forms.Form):
    """Vendor and denomination in one choice, from the latest availability only."""

    mark_optional = True  # "(optional)" after the label (templates/forms/field.html)

    request_token = RequestTokenField()
    voucher_type = forms.ChoiceField(label=_("Vendor and value"))

    def __init__(self, *args, snapshot: AvailabilitySnapshot, **kwargs):
        super().__init__(*args, **kwargs)
        self.items = {
            f"{i.vendor}|{denomination_text(i.value)}": i for i in snapshot.items if i.remaining > 0
        }
        self.fields["voucher_type"].choices = [("", _("Choose …"))] + [
            (
                key,
                _("%(vendor)s — %(value)s (%(remaining)d left)")
                % {
                    "vendor": i.vendor,
                    "value": format_money(whole_if_integral(i.value), CURRENCY_ZAR, decimals=None),
                    "remaining": i.remaining,
                },
            )
            for key, i in self.items.items()
        ]
        self.fields["voucher_type"].error_messages["invalid_choice"] = _(
            "This voucher type is not in the latest availability. Refresh the availability and choose again."
        )
        self._check_request_token()

    def clean_voucher_type(self):
        return self.items[self.cleaned_data["voucher_type"]]


class BulkUploadForm(forms.Form):
    mark_optional = True  # "(optional)" after the label (templates/forms/field.html)

    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Columns: amount, template, layout, from, for, email. UTF-8, comma or semicolon separated."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = sales_csv.max_upload_bytes()
        if upload.size > limit:
            raise ValidationError(
                _("The file is larger than %(limit)d KB. Split it into smaller files.")
                % {"limit": limit // 1024}
            )
        return upload


class SaleEmailForm(forms.Form):
    """The confirmation of "send to the customer again": which language the e-mail is in."""

    language = forms.ChoiceField(label=_("Language of the e-mail"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = list(settings.LANGUAGES)
        # The page's language is the best guess: staff usually speak the customer's language.
        self.fields["language"].initial = (get_language() or settings.LANGUAGE_CODE).split("-")[0]
