"""The audit trail: a filterable, sortable, paginated list with CSV export. Read-only."""

from __future__ import annotations

import django_filters
import django_tables2 as tables
from django import forms
from django.utils.translation import gettext_lazy as _
from django_filters.views import FilterView
from django_tables2.views import SingleTableMixin

from ..csv_export import csv_response
from ..models import AuditEvent
from ..scoping import campaigns_for
from ..selectors.audit import audit_events_for
from .base import PortalPermissionMixin


def _user_campaigns(request):
    return campaigns_for(request.user) if request else AuditEvent.objects.none()


class AuditEventFilter(django_filters.FilterSet):
    campaign = django_filters.ModelChoiceFilter(queryset=_user_campaigns, label=_("Campaign"))
    action = django_filters.CharFilter(lookup_expr="istartswith", label=_("Action starts with"))
    actor_name = django_filters.CharFilter(lookup_expr="iexact", label=_("Who"))
    since = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__gte",
        label=_("From"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__lte",
        label=_("Until"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = AuditEvent
        fields = ["campaign", "action", "actor_name", "since", "until"]


class AuditEventTable(tables.Table):
    created_at = tables.DateTimeColumn(verbose_name=_("When"), format="Y-m-d H:i:s")
    actor_name = tables.Column(verbose_name=_("Who"))
    action = tables.Column(verbose_name=_("Action"))
    campaign = tables.Column(verbose_name=_("Campaign"), accessor="campaign__name", default="—")
    summary = tables.Column(verbose_name=_("Summary"), orderable=False)

    class Meta:
        model = AuditEvent
        fields = ["created_at", "actor_name", "action", "campaign", "summary"]
        attrs = {"class": "table"}
        order_by = "-created_at"


class AuditEventListView(PortalPermissionMixin, SingleTableMixin, FilterView):
    permission_required = "vouchers.view_audit"
    table_class = AuditEventTable
    filterset_class = AuditEventFilter
    template_name = "vouchers/audit_list.html"
    paginate_by = 50

    def get_queryset(self):
        return audit_events_for(self.request.user)

    def get(self, request, *args, **kwargs):
        if request.GET.get("export") == "csv":
            filterset = self.filterset_class(request.GET, queryset=self.get_queryset(), request=request)
            events = filterset.qs if filterset.is_valid() else self.get_queryset().none()
            rows = (
                (
                    e.created_at.isoformat(),
                    e.actor_name,
                    e.action,
                    e.campaign.name if e.campaign else "",
                    e.summary,
                )
                for e in events.order_by("-created_at").iterator(chunk_size=2000)
            )
            return csv_response("audit.csv", ["when", "who", "action", "campaign", "summary"], rows)
        return super().get(request, *args, **kwargs)
