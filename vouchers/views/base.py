"""What every portal view shares: a declared permission and campaign scoping.

Every view declares ``permission_required`` (``roles.SIGNED_IN`` for pages any signed-in user
may open); a view that forgets raises ImproperlyConfigured instead of being open to everyone.
Anonymous users are sent to the login page by LoginRequiredMiddleware; signed-in users lacking
the permission get 403.
"""

from __future__ import annotations

from django.contrib.auth.mixins import PermissionRequiredMixin
from django.utils.functional import cached_property

from ..access.scoping import campaign_or_404
from ..models import Campaign


class PortalPermissionMixin(PermissionRequiredMixin):
    raise_exception = True

    def get_permission_required(self):
        if self.permission_required is None:
            # The base class raises ImproperlyConfigured with the view's name.
            return super().get_permission_required()
        if isinstance(self.permission_required, str):
            return (self.permission_required,)
        return tuple(self.permission_required)


class CampaignScopedMixin(PortalPermissionMixin):
    """Resolves ``<slug:campaign>`` from the URL to one of the user's campaigns, else 404."""

    campaign_url_kwarg = "campaign"
    #: Restrict to one provider ("lina"/"allsafe"); other campaigns are 404 here.
    provider: str | None = None

    @cached_property
    def campaign(self) -> Campaign:
        return campaign_or_404(
            self.request.user, slug=self.kwargs[self.campaign_url_kwarg], provider=self.provider
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["campaign"] = self.campaign
        return context
