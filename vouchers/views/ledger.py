"""The ledger for campaign admins: provider operations of their campaigns, filterable, sortable,
paginated, with a CSV of what the filters and the sort show. Read-only."""

from __future__ import annotations

from django_tables2 import RequestConfig

from ..output.csv_export import csv_response
from ..output.ledger import LEDGER_CSV_HEADER, LedgerTable, ledger_csv_rows
from ..selectors.ledger import LedgerFilter, ledger_for
from .base import FilteredTableView


class LedgerListView(FilteredTableView):
    permission_required = "vouchers.view_ledger"
    table_class = LedgerTable
    filterset_class = LedgerFilter
    template_name = "vouchers/ledger_list.html"

    def get_queryset(self):
        return ledger_for(self.request.user)

    def csv_response(self, queryset):
        # The table reads ?sort= the way the page does, so the file is in the order on screen.
        table = LedgerTable(queryset)
        RequestConfig(self.request, paginate=False).configure(table)
        ordered = table.data.data  # the queryset, ordered as the table was asked to sort it
        rows = ledger_csv_rows(ordered.iterator(chunk_size=2000))
        return csv_response("ledger.csv", [str(h) for h in LEDGER_CSV_HEADER], rows)
