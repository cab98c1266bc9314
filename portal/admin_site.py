"""The admin site, with one change: a signed-in user without admin access gets 403.

Django's stock admin sends such a user to the admin's own login form, which reads as
"log in again" to a cashier. A plain 403 says what is true: this page is not for you.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _

from vouchers.forms.login import PortalAdminAuthenticationForm


class PortalAdminSite(admin.AdminSite):
    site_header = _("Voucher portal administration")
    site_title = _("Voucher portal")
    index_title = _("Campaigns, people and settings")
    # Checks the user name's length before django-axes records a failed attempt (see the form).
    login_form = PortalAdminAuthenticationForm

    def password_change(self, request, extra_context=None):
        """The admin's own password page, audited like an admin's change of someone's password."""
        from vouchers.services import accounts

        response = super().password_change(request, extra_context)
        # Django redirects to "password changed" only once the new password is saved.
        if request.method == "POST" and response.status_code == 302:
            accounts.own_password_record(user=request.user)
            # The new hash already refuses them; this also clears them from the store.
            accounts.user_sessions_end(
                actor=request.user,
                user=request.user,
                reason="own password changed",
                keep_session_key=request.session.session_key,
            )
        return response

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def guarded(request, *args, **kwargs):
            if request.user.is_authenticated and not self.has_permission(request):
                raise PermissionDenied
            return inner(request, *args, **kwargs)

        guarded.__wrapped__ = inner
        return guarded
