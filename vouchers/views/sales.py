"""Sales pages: sell a gift token, allocate a digital voucher, bulk sales, the sales list.

Thin views: each parses input, calls one service or selector, and renders. Every query goes
through the scoping helpers (vouchers.access.scoping), so other campaigns' sales are 404.
"""

from __future__ import annotations

import re

from django.contrib import messages
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views import View
from django.views.generic import DetailView, FormView, TemplateView
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from .. import staff_text
from ..access.scoping import campaign_or_404, campaigns_for
from ..forms.code_search import CodeSearchForm
from ..forms.sales import (
    BulkUploadForm,
    GiftTokenSellForm,
    SaleEmailForm,
    VoucherAllocateForm,
)
from ..models import BulkSale, Sale
from ..models.campaigns import Provider
from ..output import bulk_csv as sales_csv
from ..output import qr as sales_qr
from ..output.csv_export import csv_bytes, table_csv_response
from ..output.tables import BoundedPaginator, SaleTable
from ..security.crypto import CredentialDecryptionError
from ..selectors.filters import SaleFilter
from ..selectors.sales import (
    AMOUNT_KEYS,
    availability_latest,
    bulk_example_amount,
    bulk_repeat_window_days,
    bulk_repeats,
    bulk_rows,
    bulk_rows_from,
    bulk_sale_progress,
    bulk_sales_for,
    bulk_template_examples,
    sale_email_blocker,
    sale_for,
    sale_with_code,
    sales_for,
    sales_list_for,
)
from ..services import bulk_sales as bulk_service
from ..services import sale_mail
from ..services import sales as sales_service
from ..services.refusals import Refusal
from ..services.sale_resolution import sale_resolvable
from ..staff_text import told_text
from ..values.codes import format_code
from ..values.formatting import format_money
from .base import CampaignScopedMixin, PortalPermissionMixin
from .code_search import CodeSearchView

SELL = "vouchers.sell_vouchers"
VIEW_SALES = "vouchers.view_sales"
FULL_CODES = "vouchers.view_full_codes"


def _can_see_full_codes(user) -> bool:
    return user.has_perm(FULL_CODES)


def _operation_review_url(user) -> str | None:
    """The review of unresolved operations, for roles that may settle them."""
    if not user.has_perm("vouchers.resolve_operations"):
        return None
    return reverse("vouchers:operation-review")


class SaleStartView(PortalPermissionMixin, TemplateView):
    """Where selling starts: the person's campaigns with what can be sold in each."""

    permission_required = SELL
    template_name = "vouchers/sale_start.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["campaigns"] = campaigns_for(self.request.user)
        context["bulk_sales"] = bulk_sales_for(self.request.user)[:10]
        return context


# --- One gift token ----------------------------------------------------------------------------


class SaleFormMixin(CampaignScopedMixin):
    """A form that sells once through one service call, then shows the sale (any outcome)."""

    def sell(self, form, service, **kwargs):
        try:
            sale = service(campaign=self.campaign, user=self.request.user, **kwargs)
        except Refusal as exc:
            form.add_error(None, exc.message)
            return self.form_invalid(form)
        return redirect("vouchers:sale-detail", pk=sale.pk)


class GiftTokenSellView(SaleFormMixin, FormView):
    permission_required = SELL
    provider = Provider.LINA
    form_class = GiftTokenSellForm
    template_name = "vouchers/sale_sell.html"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "campaign": self.campaign}

    def form_valid(self, form):
        data = form.cleaned_data
        fields = ("request_token", "amount", "template", "layout", "from_name", "for_name", "email")
        return self.sell(form, sales_service.gift_token_sell, **{name: data[name] for name in fields})


# --- One digital voucher -----------------------------------------------------------------------


class VoucherAllocateView(SaleFormMixin, FormView):
    permission_required = SELL
    provider = Provider.ALLSAFE
    form_class = VoucherAllocateForm
    template_name = "vouchers/sale_allocate.html"

    @cached_property
    def snapshot(self):
        return availability_latest(campaign=self.campaign)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "snapshot": self.snapshot}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["snapshot"] = self.snapshot
        return context

    def form_valid(self, form):
        item = form.cleaned_data["voucher_type"]
        return self.sell(
            form,
            sales_service.digital_voucher_allocate,
            request_token=form.cleaned_data["request_token"],
            vendor=item.vendor,
            value=item.value,
        )


class AvailabilityRefreshView(CampaignScopedMixin, View):
    """POST: fetch Allsafe's availability now, then back to the allocate form."""

    permission_required = SELL
    provider = Provider.ALLSAFE
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        try:
            snapshot = sales_service.availability_refresh(campaign=self.campaign, user=request.user)
        except Refusal as exc:
            messages.error(request, " ".join([exc.message, *exc.what_to_check]))
        else:
            if any(item.remaining > 0 for item in snapshot.items):
                messages.success(request, _("Availability refreshed."))
            else:  # an answer, not a failure (Allsafe's 204): information, not an error style
                messages.info(
                    request,
                    _(
                        "Availability refreshed: no vouchers left. Allsafe has none to hand out for this campaign."
                    ),
                )
        return redirect("vouchers:sale-allocate", campaign=self.campaign.slug)


# --- One sale ----------------------------------------------------------------------------------


class SaleScopedMixin(PortalPermissionMixin):
    permission_required = VIEW_SALES

    @cached_property
    def sale(self) -> Sale:
        try:
            return sale_for(self.request.user, self.kwargs["pk"])
        except Sale.DoesNotExist:
            raise Http404("No such sale.") from None


class SaleDetailView(SaleScopedMixin, DetailView):
    template_name = "vouchers/sale_detail.html"
    context_object_name = "sale"

    def get_object(self, queryset=None):
        return self.sale

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        sale = self.sale
        full = _can_see_full_codes(self.request.user)
        code, fields = _readable_secrets(sale)
        context["code_unreadable"] = code is None
        context["show_full_code"] = full and bool(code)
        context["display_code"] = (format_code(code) if sale.is_gift_token else code) if full and code else ""
        if not full:
            fields = {
                k: (sale.code_masked if str(k).lower() in ("pin", "code") else v) for k, v in fields.items()
            }
        context["voucher_fields"] = sorted(fields.items())
        context["explanation"] = told_text(sale.operation.staff_text)
        context["print_mode"] = self.kwargs.get("print_mode", False)
        context["review_url"] = _operation_review_url(self.request.user)
        context["resolve_url"] = (
            reverse("vouchers:sale-resolve", args=[sale.pk])
            if context["review_url"] and sale_resolvable(sale)
            else None
        )
        return context


def _readable_secrets(sale: Sale) -> tuple[str | None, dict]:
    """The sale's full code and voucher fields; ``(None, {})`` when no configured key decrypts
    them, so the page still shows the masked code and says why the rest is missing."""
    try:
        return sale.full_code, sale.voucher_fields
    except CredentialDecryptionError:
        return None, {}


class SalePrintView(SaleDetailView):
    """The printable voucher: code, value, QR, names; opens the print dialog via [data-print]."""

    template_name = "vouchers/sale_print.html"

    def get(self, request, *args, **kwargs):
        if not self.sale.sold:  # a failed, open or code-less sale has nothing to print
            messages.error(request, _("Nothing to print: this sale has no code to hand out."))
            return redirect("vouchers:sale-detail", pk=self.sale.pk)
        return super().get(request, *args, **kwargs)


class SaleEmailView(SaleScopedMixin, FormView):
    """ "Send to the customer again": GET is the confirmation step, POST sends (services/sale_mail.py).

    The e-mail carries the full code, so only roles that both sell and see full codes send it.
    """

    permission_required = (VIEW_SALES, SELL, FULL_CODES)
    form_class = SaleEmailForm
    template_name = "vouchers/sale_email.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["sale"] = self.sale
        context["blocker"] = sale_email_blocker(self.sale)
        return context

    def form_valid(self, form):
        try:
            sale_mail.sale_email_again(
                sale=self.sale, user=self.request.user, language=form.cleaned_data["language"]
            )
        except Refusal as exc:
            messages.error(self.request, " ".join([exc.message, *exc.what_to_check]))
        else:
            messages.success(self.request, staff_text.SALE_EMAIL_SENT % {"email": self.sale.email})
        return redirect("vouchers:sale-detail", pk=self.sale.pk)


class SaleQrView(SaleScopedMixin, View):
    """The QR image carries the full code, so only roles that see full codes get it."""

    permission_required = (VIEW_SALES, FULL_CODES)

    def get(self, request, *args, **kwargs):
        sale = self.sale
        code, _fields = _readable_secrets(sale)
        if not (sale.is_gift_token and code):
            raise Http404("This sale has no readable code.")
        png, _source = sales_qr.qr_png(code=code, qrcode_base64=sale.qrcode_png_base64)
        response = HttpResponse(png, content_type="image/png")
        response["Cache-Control"] = "private, no-store"
        return response


# --- Sales list --------------------------------------------------------------------------------


class SaleListView(PortalPermissionMixin, SingleTableMixin, FilterView):
    permission_required = VIEW_SALES
    paginator_class = BoundedPaginator
    filterset_class = SaleFilter
    template_name = "vouchers/sale_list.html"
    # The table alone paginates (one capped count): see views/base.FilteredTableView.
    paginate_by = None
    table_pagination = {"per_page": 50}

    table_class = SaleTable

    def get_queryset(self):
        return sales_list_for(self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["code_search"] = CodeSearchForm()
        code_of = self.filterset.form.cleaned_data.get("code_of") if self.filterset.is_valid() else None
        if code_of:
            # What the code search found, named by the masked code (the full one is never echoed).
            context["searched_code"] = (
                sales_for(self.request.user).filter(pk=code_of).values_list("code_masked", flat=True).first()
                or "—"
            )
            context["without_code"] = self.request.GET.copy()
            context["without_code"].pop("code_of", None)
        return context


class SaleCodeSearchView(CodeSearchView):
    """A typed full code → the sales list showing every sale with it (``code_of``, selectors/filters.py)."""

    permission_required = VIEW_SALES
    list_url_name = "vouchers:sale-list"
    reference_param = "code_of"
    not_found_message = _lazy("No sale of your campaigns has this code.")

    def find(self, user, code):
        sale = sale_with_code(user, code)
        return sale.pk if sale else None


class SaleExportView(PortalPermissionMixin, View):
    """The filtered sales list as CSV: the list's table (masked codes), streamed, formulas neutralised.

    Same filters and sort as the page; filters the page refuses give an empty file, as the page
    shows no rows for them, never the whole unfiltered list.
    """

    permission_required = VIEW_SALES

    def get(self, request, *args, **kwargs):
        sales = sales_list_for(request.user)
        filterset = SaleFilter(request.GET or None, queryset=sales, request=request)
        if filterset.is_bound:
            sales = filterset.qs if filterset.is_valid() else sales.none()
        return table_csv_response(request, "sales.csv", SaleTable(sales))


# --- Bulk sales --------------------------------------------------------------------------------


class BulkUploadView(CampaignScopedMixin, FormView):
    permission_required = SELL
    provider = Provider.LINA
    form_class = BulkUploadForm
    template_name = "vouchers/bulksale_upload.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["max_rows"] = sales_csv.max_upload_rows()
        context["max_kb"] = sales_csv.max_upload_bytes() // 1024
        context["templates"] = self.campaign.sale_templates.filter(is_active=True).order_by("name")
        return context

    def form_valid(self, form):
        upload = form.cleaned_data["file"]
        try:
            data = upload.read(sales_csv.max_upload_bytes() + 1)
            bulk = bulk_service.bulk_sale_create(
                campaign=self.campaign, user=self.request.user, filename=upload.name, data=data
            )
        except sales_csv.BulkFileError as exc:
            form.add_error("file", exc.message)
            return self.form_invalid(form)
        except Refusal as exc:
            form.add_error(None, exc.message)
            return self.form_invalid(form)
        return redirect("vouchers:bulksale-detail", pk=bulk.pk)


class BulkTemplateCsvView(PortalPermissionMixin, View):
    """The example file for ``?campaign=<slug>`` (or the person's one LINA campaign), built from
    that campaign's own templates; the generic example only when no campaign is known."""

    permission_required = SELL

    def get(self, request, *args, **kwargs):
        slug = request.GET.get("campaign", "")
        if slug:
            campaign = campaign_or_404(request.user, slug=slug, provider=Provider.LINA)
        else:
            mine = list(campaigns_for(request.user, provider=Provider.LINA)[:2])
            campaign = mine[0] if len(mine) == 1 else None
        if campaign is None:
            data, name = sales_csv.bulk_template_csv(), "bulk-sale-template.csv"
        else:
            data = sales_csv.bulk_template_csv(
                bulk_template_examples(campaign), amount=f"{bulk_example_amount(campaign):.2f}"
            )
            name = f"bulk-sale-template-{campaign.slug}.csv"
        response = HttpResponse(data, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class BulkScopedMixin(PortalPermissionMixin):
    permission_required = SELL

    @cached_property
    def bulk_sale(self) -> BulkSale:
        try:
            return bulk_sales_for(self.request.user).get(pk=self.kwargs["pk"])
        except BulkSale.DoesNotExist:
            raise Http404("No such bulk sale.") from None


class BulkSaleDetailView(BulkScopedMixin, TemplateView):
    """Before the start: the preview with every line's problems. Afterwards: progress and results."""

    template_name = "vouchers/bulksale_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        bulk = self.bulk_sale
        context["bulk"] = bulk
        context["campaign"] = bulk.campaign
        repeats = bulk_repeats(bulk) if bulk.state == BulkSale.State.DRAFT else {}
        context["rows"] = [_with_repeat(row, repeats) for row in bulk_rows(bulk)]
        context["repeats"] = len(repeats)
        context["repeat_days"] = bulk_repeat_window_days()
        context["progress"] = bulk_sale_progress(bulk_sale=bulk)
        context["show_full_code"] = _can_see_full_codes(self.request.user)
        return context


def _with_repeat(row, repeats):
    row.repeat = repeats.get(row.line_number)
    return row


#: A count or a line number from a form or a query string (ASCII digits; str.isdigit takes "²").
_SMALL_NUMBER = re.compile(r"[0-9]{1,6}")


class BulkActionView(BulkScopedMixin, View):
    http_method_names = ["post"]
    action = ""

    def post(self, request, *args, **kwargs):
        service = {
            "start": bulk_service.bulk_sale_start,
            "cancel": bulk_service.bulk_sale_cancel,
            "resume": bulk_service.bulk_sale_resume,
        }[self.action]
        extra = {}
        if self.action == "start":  # how many repeated rows the person saw and confirmed
            confirmed = request.POST.get("repeats_confirmed", "")
            extra["repeats_confirmed"] = int(confirmed) if _SMALL_NUMBER.fullmatch(confirmed) else 0
        try:
            bulk = service(bulk_sale=self.bulk_sale, user=request.user, **extra)
        except Refusal as exc:
            messages.error(request, exc.message)
        else:
            if getattr(bulk, "queue_failed", False):
                messages.error(request, bulk_service.QUEUE_FAILED_NOTE)
        return redirect("vouchers:bulksale-detail", pk=self.bulk_sale.pk)


class BulkProgressView(BulkScopedMixin, View):
    """The small JSON the progress bar polls."""

    def get(self, request, *args, **kwargs):
        bulk = self.bulk_sale
        progress = bulk_sale_progress(bulk_sale=bulk)
        for key in AMOUNT_KEYS:  # the totals as the page shows them, with the currency
            progress[f"{key}_text"] = format_money(progress[key])
        # Rows the job reached from line ``from`` on (the first line the page still waits for),
        # each with its result cell rendered by the same template as the page.
        first = request.GET.get("from", "")
        first_line = int(first) if _SMALL_NUMBER.fullmatch(first) else 1
        full = _can_see_full_codes(request.user)
        progress["rows"] = [
            {
                "line": row.line_number,
                "final": not (row.sale and row.sale.operation.state == "pending"),
                "html": render_to_string(
                    "vouchers/_bulk_row_result.html", {"row": row, "show_full_code": full}, request=request
                ),
            }
            for row in bulk_rows_from(bulk, first_line)
        ]
        response = JsonResponse(progress)
        response["Cache-Control"] = "no-store"
        return response


class BulkResultCsvView(BulkScopedMixin, View):
    """Every uploaded line with what happened to it; full codes only for roles that see them."""

    def get(self, request, *args, **kwargs):
        bulk = self.bulk_sale
        full = _can_see_full_codes(request.user)
        header = [*sales_csv.BULK_COLUMNS, "line", "result", "code", "layout link", "message"]
        rows = []
        for row in bulk_rows(bulk):
            sale = row.sale
            if not row.valid:
                result, code, link, message = _("invalid"), "", "", " ".join(row.display_errors)
            elif sale is None:
                result, code, link, message = _("not sold"), "", "", row.display_message
            else:
                result = sale.shown_state_label
                plain, _fields = _readable_secrets(sale)
                code = (format_code(plain) if full else sale.code_masked) if plain else ""
                link = sale.layout_url if full else ""
                message = row.display_message
            rows.append(
                [
                    *(row.raw.get(c, "") for c in sales_csv.BULK_COLUMNS),
                    row.line_number,
                    result,
                    code,
                    link,
                    message,
                ]
            )
        response = HttpResponse(csv_bytes(header, rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="bulk-sale-{bulk.pk}-result.csv"'
        return response
