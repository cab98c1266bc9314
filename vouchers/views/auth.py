"""Password reset by e-mail: Django's own views, with throttling, no enumeration and an audit trail.

Requesting a link answers with the same page whether or not an account has the address (the
mail is sent by a worker, services/accounts.py). Setting the new password checks
AUTH_PASSWORD_VALIDATORS, ends every session of that person, is an audit event and does not
sign in: signing in stays behind django-axes, so a reset never lifts a lock-out.
"""

from __future__ import annotations

from axes.helpers import get_client_ip_address
from django.contrib.auth import views as auth_views
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import staff_text
from ..access.roles import desk_is_home
from ..forms.login import PortalAuthenticationForm, PortalPasswordResetForm, PortalSetPasswordForm
from ..services import accounts

RESET_UNAVAILABLE = _("Password reset is not available right now. Try again in a few minutes.")
RESET_NOT_QUEUED = _("The e-mail could not be sent right now. Try again in a few minutes.")


def reset_throttled_text(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return ngettext(
        "Too many password reset requests. Try again in %(minutes)d minute.",
        "Too many password reset requests. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


class PortalLoginView(auth_views.LoginView):
    """Django's login; a cashier lands on the desk of their last campaign instead of Home."""

    authentication_form = PortalAuthenticationForm
    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        if desk_is_home(self.request.user):
            return reverse("vouchers:desk-home")
        return super().get_default_redirect_url()


class PortalPasswordResetView(auth_views.PasswordResetView):
    form_class = PortalPasswordResetForm

    def form_valid(self, form):
        try:
            accounts.password_reset_request(
                email=form.cleaned_data["email"],
                ip=get_client_ip_address(self.request),
                domain=self.request.get_host(),
                use_https=self.request.is_secure(),
                language=translation.get_language(),
            )
        except accounts.ResetThrottled as exc:
            form.add_error(None, reset_throttled_text(exc.retry_after))
        except accounts.ResetUnavailable:
            form.add_error(None, RESET_UNAVAILABLE)
        except accounts.ResetNotQueued:
            form.add_error(None, RESET_NOT_QUEUED)
        else:
            return HttpResponseRedirect(self.get_success_url())
        return self.form_invalid(form)


class PortalPasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = PortalSetPasswordForm
    # Said here although it is Django's default: a reset must never sign anyone in past axes.
    post_reset_login = False

    def form_valid(self, form):
        with transaction.atomic():
            response = super().form_valid(form)
            ended = accounts.user_sessions_end(
                actor=form.user, user=form.user, reason=staff_text.SESSIONS_PASSWORD_RESET
            )
            accounts.password_reset_record(user=form.user, ended_sessions=ended)
        return response
