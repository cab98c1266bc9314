"""The ledger for campaign admins: provider operations of their campaigns, filterable, sortable,
paginated, with a CSV of what the filters and the sort show. Read-only."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django_tables2 import RequestConfig

from ..forms.code_search import CodeSearchForm
from ..output.csv_export import csv_response
from ..output.ledger import LEDGER_CSV_HEADER, LedgerTable, ledger_csv_rows
from ..selectors.ledger import LedgerFilter, ledger_for, operation_with_code
from .base import FilteredTableView
from .code_search import CodeSearchView

VIEW_LEDGER = "vouchers.view_ledger"


class LedgerListView(FilteredTableView):
    permission_required = VIEW_LEDGER
    table_class = LedgerTable
    filterset_class = LedgerFilter
    template_name = "vouchers/ledger_list.html"

    def get_queryset(self):
        return ledger_for(self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["code_search"] = CodeSearchForm()
        return context

    def csv_response(self, queryset):
        # The table reads ?sort= the way the page does, so the file is in the order on screen.
        table = LedgerTable(queryset)
        RequestConfig(self.request, paginate=False).configure(table)
        ordered = table.data.data  # the queryset, ordered as the table was asked to sort it
        rows = ledger_csv_rows(ordered.iterator(chunk_size=2000))
        return csv_response("ledger.csv", [str(h) for h in LEDGER_CSV_HEADER], rows)


class LedgerCodeSearchView(CodeSearchView):
    """A typed full code → the ledger showing every operation on it (``same_code_as``)."""

    permission_required = VIEW_LEDGER
    list_url_name = "vouchers:ledger-list"
    reference_param = "same_code_as"
    not_found_message = _("No operation of your campaigns has this code.")

    def find(self, user, code):
        operation = operation_with_code(user, code)
        return operation.pk if operation else None
