"""The ledger for campaign admins: provider operations of their campaigns, filterable, sortable,
paginated, with a CSV of what the filters and the sort show. Read-only."""

from __future__ import annotations

from django_filters.views import FilterView
from django_tables2 import RequestConfig
from django_tables2.views import SingleTableMixin

from ..output.csv_export import csv_response
from ..output.ledger import LEDGER_CSV_HEADER, LedgerTable, ledger_csv_rows
from ..output.tables import BoundedPaginator
from ..selectors.ledger import LedgerFilter, ledger_for
from .base import PortalPermissionMixin


class LedgerListView(PortalPermissionMixin, SingleTableMixin, FilterView):
    permission_required = "vouchers.view_ledger"
    paginator_class = BoundedPaginator
    table_class = LedgerTable
    filterset_class = LedgerFilter
    template_name = "vouchers/ledger_list.html"
    paginate_by = 50

    def get_queryset(self):
        return ledger_for(self.request.user)

    def get(self, request, *args, **kwargs):
        if request.GET.get("export") != "csv":
            return super().get(request, *args, **kwargs)
        filterset = self.filterset_class(request.GET, queryset=self.get_queryset(), request=request)
        operations = filterset.qs if filterset.is_valid() else self.get_queryset().none()
        # The table reads ?sort= the way the page does, so the file is in the order on screen.
        table = LedgerTable(operations)
        RequestConfig(request, paginate=False).configure(table)
        ordered = table.data.data  # the queryset, ordered as the table was asked to sort it
        rows = ledger_csv_rows(ordered.iterator(chunk_size=2000))
        return csv_response("ledger.csv", [str(h) for h in LEDGER_CSV_HEADER], rows)
