"""The start page: the campaigns a person works on, and what they can do there."""

from django.views.generic import DetailView

from ..access.roles import SIGNED_IN
from ..access.scoping import campaigns_for
from .base import CampaignScopedMixin, ReadPageView


class HomeView(ReadPageView):
    permission_required = SIGNED_IN
    template_name = "vouchers/home.html"
    context_name, read = "campaigns", campaigns_for


class CampaignDetailView(CampaignScopedMixin, DetailView):
    permission_required = SIGNED_IN
    template_name = "vouchers/campaign_detail.html"
    context_object_name = "campaign"

    def get_object(self, queryset=None):
        return self.campaign
