"""Forms of the People pages: a new cashier or marketing manager, a new password."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils.translation import gettext_lazy as _

from ..access.roles import ROLE_LABELS
from ..access.scoping import campaigns_for
from ..selectors.people import MANAGED_ROLES


class _NewPasswordMixin:
    """Two password fields checked against each other and Django's password validators."""

    def _password_fields(self):
        self.fields["password1"] = forms.CharField(
            label=_("Password"),
            strip=False,
            max_length=128,
            widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
            help_text=password_validation.password_validators_help_text_html(),
        )
        self.fields["password2"] = forms.CharField(
            label=_("Password again"),
            strip=False,
            max_length=128,
            widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        )

    def _clean_passwords(self, cleaned, user) -> None:
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords differ."))
            return
        if first:
            try:
                password_validation.validate_password(first, user)
            except forms.ValidationError as error:
                self.add_error("password1", error)


class PersonCreateForm(_NewPasswordMixin, forms.Form):
    username = forms.CharField(
        label=_("User name"),
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text=_("What they sign in with. Letters, digits and @ . + - _ only."),
    )
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    email = forms.EmailField(
        label=_("E-mail"), required=False, help_text=_("For resetting the password by e-mail.")
    )
    role = forms.ChoiceField(label=_("Role"), choices=[(r, ROLE_LABELS[r]) for r in MANAGED_ROLES])
    campaigns = forms.ModelMultipleChoiceField(
        label=_("Campaigns"), queryset=None, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaigns"].queryset = campaigns_for(actor)
        self._password_fields()

    def clean_username(self):
        username = self.cleaned_data["username"]
        if get_user_model()._default_manager.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("This user name is taken; choose another one."))
        return username

    def clean(self):
        cleaned = super().clean()
        model = get_user_model()
        self._clean_passwords(
            cleaned, model(username=cleaned.get("username", ""), email=cleaned.get("email", ""))
        )
        return cleaned


class PersonPasswordForm(_NewPasswordMixin, forms.Form):
    def __init__(self, *args, person, **kwargs):
        super().__init__(*args, **kwargs)
        self.person = person
        self._password_fields()

    def clean(self):
        cleaned = super().clean()
        self._clean_passwords(cleaned, self.person)
        return cleaned
