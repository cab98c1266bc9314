"""Sales pages: sell a gift token, allocate a digital voucher, bulk sales, the sales list.

Thin views: each parses input, calls one service or selector, and renders. Every query goes
through the scoping helpers (vouchers.access.scoping), so other campaigns' sales are 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import DetailView, FormView, TemplateView
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from ..access.scoping import campaigns_for
from ..forms.sales import BulkUploadForm, GiftTokenSellForm, VoucherAllocateForm
from ..models import BulkSale, Sale
from ..models.campaigns import Provider
from ..output import bulk_csv as sales_csv
from ..output import qr as sales_qr
from ..output.csv_export import csv_bytes, table_csv_response
from ..output.tables import BoundedPaginator, SaleTable
from ..security.crypto import CredentialDecryptionError
from ..selectors.filters import SaleFilter
from ..selectors.sales import (
    availability_latest,
    bulk_rows,
    bulk_sale_progress,
    bulk_sales_for,
    sale_for,
    sales_for,
)
from ..services import bulk_sales as bulk_service
from ..services import sales as sales_service
from ..services.refusals import Refusal
from ..staff_text import told_text
from ..values.codes import format_code
from .base import CampaignScopedMixin, PortalPermissionMixin

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
    paginate_by = 50

    table_class = SaleTable

    def get_queryset(self):
        return sales_for(self.request.user)


class SaleExportView(PortalPermissionMixin, View):
    """The filtered sales list as CSV: the list's table (masked codes), streamed, formulas neutralised."""

    permission_required = VIEW_SALES

    def get(self, request, *args, **kwargs):
        filterset = SaleFilter(request.GET or None, queryset=sales_for(request.user), request=request)
        queryset = filterset.qs if filterset.is_bound and filterset.is_valid() else sales_for(request.user)
        return table_csv_response(request, "sales.csv", SaleTable(queryset))


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
    permission_required = SELL

    def get(self, request, *args, **kwargs):
        response = HttpResponse(sales_csv.bulk_template_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="bulk-sale-template.csv"'
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
        context["rows"] = bulk_rows(bulk)
        context["progress"] = bulk_sale_progress(bulk_sale=bulk)
        context["show_full_code"] = _can_see_full_codes(self.request.user)
        return context


class BulkActionView(BulkScopedMixin, View):
    http_method_names = ["post"]
    action = ""

    def post(self, request, *args, **kwargs):
        service = {
            "start": bulk_service.bulk_sale_start,
            "cancel": bulk_service.bulk_sale_cancel,
            "resume": bulk_service.bulk_sale_resume,
        }[self.action]
        try:
            bulk = service(bulk_sale=self.bulk_sale, user=request.user)
        except Refusal as exc:
            messages.error(request, exc.message)
        else:
            if getattr(bulk, "queue_failed", False):
                messages.error(request, bulk_service.QUEUE_FAILED_NOTE)
        return redirect("vouchers:bulksale-detail", pk=self.bulk_sale.pk)


class BulkProgressView(BulkScopedMixin, View):
    """The small JSON the progress bar polls."""

    def get(self, request, *args, **kwargs):
        progress = bulk_sale_progress(bulk_sale=self.bulk_sale)
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
                result, code, link, message = _("not sold"), "", "", row.message
            else:
                result = sale.operation.get_state_display()
                plain, _fields = _readable_secrets(sale)
                code = (format_code(plain) if full else sale.code_masked) if plain else ""
                link = sale.layout_url if full else ""
                message = row.message
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
