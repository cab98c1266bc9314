"""Forms shared across the app (the admin's campaign form lives here too)."""

from __future__ import annotations

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from ..models import Campaign
from ..services.providers import base_url_refusal

BASE_URL_MOVE_NOTE = _(
    "Changing the scheme, host or port clears the stored API password and shared key, unless "
    "you enter new ones in the same save: credentials are only ever sent to the address they "
    "were entered for."
)


class WriteOnlySecretField(forms.CharField):
    """A secret input that never renders a stored value; blank means "keep what is stored"."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        kwargs.setdefault("max_length", 500)
        kwargs.setdefault(
            "widget", forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
        )
        super().__init__(**kwargs)


class CampaignAdminForm(forms.ModelForm):
    base_url = forms.URLField(
        label=_("base URL"),
        max_length=300,
        assume_scheme="https",
        help_text=format_lazy("{} {}", Campaign._meta.get_field("base_url").help_text, BASE_URL_MOVE_NOTE),
        widget=forms.URLInput(attrs={"class": "vURLField"}),
    )
    new_password = WriteOnlySecretField(
        label=_("API password"), help_text=_("Write-only. Leave blank to keep the stored password.")
    )
    new_shared_key = WriteOnlySecretField(
        label=_("Shared key (LINA)"), help_text=_("Write-only. Leave blank to keep the stored key.")
    )

    class Meta:
        model = Campaign
        fields = [
            "name",
            "slug",
            "provider",
            "is_live",
            "starts_on",
            "ends_on",
            "base_url",
            "connect_timeout",
            "read_timeout",
            "api_username",
            "lina_hash_recipe",
            "lina_login_user_field",
            "lina_login_pass_field",
            "sale_min_amount",
            "sale_max_amount",
            "allsafe_allocate_path",
            "allsafe_vendor_field",
            "allsafe_value_field",
            "allsafe_reference_field",
            "poll_interval_minutes",
            "low_stock_threshold",
            "stale_after_intervals",
        ]

    def clean(self):
        cleaned = super().clean()
        provider = cleaned.get("provider")
        creating = self.instance.pk is None
        if creating and provider and not cleaned.get("new_password"):
            self.add_error("new_password", _("A new campaign needs its API password."))
        if creating and provider == "lina" and not cleaned.get("new_shared_key"):
            self.add_error("new_shared_key", _("A LINA campaign needs its shared key."))
        base_url = cleaned.get("base_url")
        refusal = base_url_refusal(provider, base_url) if provider and base_url else ""
        if refusal:
            self.add_error("base_url", refusal)
        for name in ("new_password", "new_shared_key"):
            value = cleaned.get(name) or ""
            if "\x00" in value:
                self.add_error(name, _("The value contains a character that is not allowed."))
        return cleaned
