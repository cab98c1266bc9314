"""The audit trail: a filterable, sortable, paginated list with CSV export. Read-only."""

from __future__ import annotations

from django_filters.views import FilterView
from django_tables2.views import SingleTableMixin

from ..output.csv_export import table_csv_response
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
            # The same table as the page, with the page's filters, as a streamed file.
            filterset = self.filterset_class(request.GET, queryset=self.get_queryset(), request=request)
            events = filterset.qs if filterset.is_valid() else self.get_queryset().none()
            return table_csv_response(request, "audit.csv", self.table_class(events))
        return super().get(request, *args, **kwargs)
