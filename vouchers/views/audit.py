"""The audit trail: a filterable, sortable, paginated list with CSV export. Read-only."""

from __future__ import annotations

from django_filters.views import FilterView
from django_tables2.views import SingleTableMixin

from ..output.csv_export import csv_response
from ..output.tables import AuditEventTable, BoundedPaginator
from ..selectors.audit import audit_events_for
from ..selectors.filters import AuditEventFilter
from .base import PortalPermissionMixin


class AuditEventListView(PortalPermissionMixin, SingleTableMixin, FilterView):
    permission_required = "vouchers.view_audit"
    paginator_class = BoundedPaginator
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
