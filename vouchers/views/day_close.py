"""Day close: the cashier's end-of-shift summary (a printable Z-report, CSV) and the campaign
admins' report per cashier and day over a date range. Reads only: one selector per page.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils.translation import gettext as _
from django.views.generic import TemplateView, View

from ..forms.desk import CashierCloseForm, DayCloseForm
from ..output.csv_export import csv_response
from ..selectors.day_close import MAX_RANGE_DAYS, campaign_day_close, cashier_day_close, today
from ..selectors.desk import desk_campaigns
from .base import PortalPermissionMixin

USE_DESK = "vouchers.use_desk"
VIEW_LEDGER = "vouchers.view_ledger"


def _cashier_close(request):
    form = CashierCloseForm(request.GET or None)
    day = today()
    if form.is_bound and form.is_valid() and form.cleaned_data["day"]:
        day = form.cleaned_data["day"]
    if not form.is_bound:
        form = CashierCloseForm(initial={"day": day})  # the field shows which day this is
    return form, cashier_day_close(user=request.user, day=day)


def _range_close(request):
    form = DayCloseForm(request.GET or None, campaigns=desk_campaigns(request.user), max_days=MAX_RANGE_DAYS)
    end = today()
    start, campaign = end - timedelta(days=6), None  # a week unless asked otherwise
    if form.is_bound and form.is_valid():
        start = form.cleaned_data["date_from"] or start
        end = form.cleaned_data["date_to"] or end
        campaign = form.cleaned_data["campaign"]
    elif form.is_bound:
        return form, None
    else:
        form = DayCloseForm(
            initial={"date_from": start, "date_to": end},
            campaigns=desk_campaigns(request.user),
            max_days=MAX_RANGE_DAYS,
        )
    return form, campaign_day_close(user=request.user, date_from=start, date_to=end, campaign=campaign)


def _counts_header() -> list[str]:
    return [_("redeemed"), _("total (EUR)"), _("not redeemed"), _("outcome open")]


def _counts(row) -> list:
    return [row.redeemed, f"{row.total:.2f}", row.not_redeemed, row.open]


class _ClosePage(PortalPermissionMixin, TemplateView):
    read = None  # (request) -> (form, close): the page and its CSV read the same

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["form"], context["close"] = type(self).read(self.request)
        return context


class DeskCloseView(_ClosePage):
    """The cashier's own day: count and total per campaign, open redeems listed, printable."""

    permission_required = USE_DESK
    template_name = "vouchers/desk_close.html"
    read = _cashier_close


class DeskCloseCsvView(PortalPermissionMixin, View):
    permission_required = USE_DESK

    def get(self, request, *args, **kwargs):
        _form, close = _cashier_close(request)
        header = [_("day"), _("campaign"), *_counts_header()]
        rows = [[close.date_from.isoformat(), r.campaign, *_counts(r)] for r in close.rows]
        return csv_response(f"day-close-{close.date_from.isoformat()}.csv", header, rows)


class DayCloseView(_ClosePage):
    """Campaign admins: every cashier's redeems per day and campaign over a date range."""

    permission_required = VIEW_LEDGER
    template_name = "vouchers/day_close.html"
    read = _range_close


class DayCloseCsvView(PortalPermissionMixin, View):
    permission_required = VIEW_LEDGER

    def get(self, request, *args, **kwargs):
        _form, close = _range_close(request)
        header = [_("day"), _("cashier"), _("campaign"), *_counts_header()]
        rows = (
            [r.day.isoformat(), r.cashier, r.campaign, *_counts(r)] for r in (close.rows if close else [])
        )
        if close is None:  # refused dates: an empty file
            return csv_response("day-close.csv", header, rows)
        return csv_response(f"day-close-{close.date_from}-{close.date_to}.csv", header, rows)
