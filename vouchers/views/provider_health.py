"""The admins' provider-health page: how each campaign's provider has been answering lately."""

from __future__ import annotations

from django.conf import settings
from django.views.generic import TemplateView

from ..selectors.health import provider_health_for
from .base import PortalPermissionMixin


class ProviderHealthView(PortalPermissionMixin, TemplateView):
    # Those who read the ledger (campaign admins) are the ones who act on a failing provider.
    permission_required = "vouchers.view_ledger"
    template_name = "vouchers/provider_health.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["rows"] = provider_health_for(self.request.user)
        context["window_minutes"] = settings.PROVIDER_HEALTH_WINDOW_MINUTES
        context["lookback_days"] = settings.PROVIDER_HEALTH_LOOKBACK_DAYS
        return context
