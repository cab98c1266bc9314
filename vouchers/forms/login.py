"""The sign-in form (Django's, with the user name's length enforced before anyone looks it up)
and the password reset forms."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.core.validators import MaxLengthValidator
from django.utils.translation import gettext_lazy as _


class UsernameLengthMixin:
    """Django's AuthenticationForm only sets ``maxlength`` on the input, it does not check it.

    An over-long name then reached authentication, and django-axes stored it with the failed
    attempt (a 255-character column): PostgreSQL refused it and the sign-in page became a
    server error. Checking the length here refuses it with Django's own message instead.
    """

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        field = self.fields["username"]
        field.validators.append(MaxLengthValidator(field.max_length))


class PortalAuthenticationForm(UsernameLengthMixin, AuthenticationForm):
    """The portal's sign-in page."""

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].label = _("User name")
        self.fields["password"].label = _("Password")


class PortalAdminAuthenticationForm(UsernameLengthMixin, AdminAuthenticationForm):
    """The admin's own sign-in page (/admin/login/), reachable without a session too."""


class PortalPasswordResetForm(PasswordResetForm):
    """The "forgot your password" form: an e-mail address, nothing looked up here.

    The view never asks whether an account has the address (services/accounts.py mails from a
    worker), so the answer is the same page in the same time either way.
    """

    email = forms.EmailField(
        label=_("E-mail address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
        error_messages={
            "required": _("Enter the e-mail address of your account."),
            "invalid": _("Enter a valid e-mail address, for example name@example.com."),
        },
    )


#: Longer passwords are refused before the validators compare them with the user's name and
#: e-mail (a similarity check that is slow on enormous input); far beyond any passphrase.
PASSWORD_MAX_LENGTH = 256


class PortalSetPasswordForm(SetPasswordForm):
    """The new password of a reset, checked by every validator in AUTH_PASSWORD_VALIDATORS."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].label = _("New password")
        self.fields["new_password1"].widget.attrs["autofocus"] = True
        self.fields["new_password2"].label = _("New password again")
        self.fields["new_password2"].help_text = ""  # the first field's rules say it all
        for name in ("new_password1", "new_password2"):
            self.fields[name].validators.append(
                MaxLengthValidator(
                    PASSWORD_MAX_LENGTH,
                    message=_("Use at most %(limit_value)d characters.")
                    % {"limit_value": PASSWORD_MAX_LENGTH},
                )
            )
