"""The start page: the campaigns a person works on, and what they can do there."""

from django.views.generic import DetailView, TemplateView

from ..access.roles import SIGNED_IN
from ..access.scoping import campaigns_for
from .base import CampaignScopedMixin, PortalPermissionMixin


class HomeView(PortalPermissionMixin, TemplateView):
    permission_required = SIGNED_IN
    template_name = "vouchers/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["campaigns"] = campaigns_for(self.request.user)
        return context


class CampaignDetailView(CampaignScopedMixin, DetailView):
    permission_required = SIGNED_IN
    template_name = "vouchers/campaign_detail.html"
    context_object_name = "campaign"

    def get_object(self, queryset=None):
        return self.campaign
