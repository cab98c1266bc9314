"""Stock pages: the overview of a person's Allsafe campaigns, one campaign's stock, its thresholds."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

from ..forms.stock import StockDefaultThresholdForm, StockThresholdOverrideFormSet
from ..models import StockThreshold
from ..selectors.stock import (
    CHART_RANGES,
    chart_days_from,
    health_of,
    open_alerts_for,
    stock_campaigns_for,
    stock_detail,
    stock_vendors,
)
from ..services.stock import ThresholdOverride, stock_thresholds_save
from .base import CampaignScopedMixin, PortalPermissionMixin


class StockDashboardView(PortalPermissionMixin, TemplateView):
    permission_required = "vouchers.view_stock"
    template_name = "vouchers/stock_dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        campaigns = list(stock_campaigns_for(self.request.user))
        context["rows"] = [
            (
                campaign,
                getattr(campaign, "stock_monitor", None),
                health_of(campaign, getattr(campaign, "stock_monitor", None)),
            )
            for campaign in campaigns
        ]
        context["open_alerts"] = open_alerts_for(self.request.user)
        return context


class StockDetailView(CampaignScopedMixin, TemplateView):
    permission_required = "vouchers.view_stock"
    provider = "allsafe"
    template_name = "vouchers/stock_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["stock"] = stock_detail(
            self.campaign, chart_days=chart_days_from(self.request.GET.get("days"))
        )
        context["chart_ranges"] = CHART_RANGES
        context["can_manage"] = self.request.user.has_perm("vouchers.manage_stock")
        return context


class StockThresholdsView(CampaignScopedMixin, TemplateView):
    permission_required = "vouchers.manage_stock"
    provider = "allsafe"
    template_name = "vouchers/stock_thresholds.html"

    def get(self, request, *args, **kwargs):
        default_form = StockDefaultThresholdForm(
            initial={"default_threshold": self.campaign.low_stock_threshold}
        )
        formset = StockThresholdOverrideFormSet(
            prefix="overrides",
            initial=[
                {"vendor": rule.vendor, "value": rule.value, "threshold": rule.threshold}
                for rule in StockThreshold.objects.filter(campaign=self.campaign)
            ],
        )
        return self.render_to_response(self.get_context_data(default_form=default_form, formset=formset))

    def post(self, request, *args, **kwargs):
        default_form = StockDefaultThresholdForm(request.POST)
        formset = StockThresholdOverrideFormSet(request.POST, prefix="overrides")
        if not (default_form.is_valid() and formset.is_valid()):
            messages.error(request, _("Nothing was saved: please correct the marked fields."))
            return self.render_to_response(self.get_context_data(default_form=default_form, formset=formset))
        stock_thresholds_save(
            campaign=self.campaign,
            actor=request.user,
            default_threshold=default_form.cleaned_data["default_threshold"],
            overrides=[
                ThresholdOverride(row["vendor"], row["value"], row["threshold"])
                for row in formset.overrides()
            ],
        )
        messages.success(request, _("Thresholds saved. They apply from the next stock poll on."))
        return redirect("vouchers:stock-detail", campaign=self.campaign.slug)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["vendors"] = stock_vendors(self.campaign)
        return context
