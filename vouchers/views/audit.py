"""The audit trail: a filterable, sortable, paginated list with CSV export. Read-only."""

from __future__ import annotations

from ..output.tables import AuditEventTable
from ..selectors.audit import audit_events_for
from ..selectors.filters import AuditEventFilter
from .base import FilteredTableView


class AuditEventListView(FilteredTableView):
    permission_required = "vouchers.view_audit"
    table_class = AuditEventTable
    filterset_class = AuditEventFilter
    template_name = "vouchers/audit_list.html"

    csv_filename = "audit.csv"

    def get_queryset(self):
        return audit_events_for(self.request.user)
