"""The sign-in form: Django's, with the user name's length enforced before anyone looks it up."""

from __future__ import annotations

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator


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


class PortalAdminAuthenticationForm(UsernameLengthMixin, AdminAuthenticationForm):
    """The admin's own sign-in page (/admin/login/), reachable without a session too."""
