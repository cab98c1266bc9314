from django.urls import path

from .views import home, sales

app_name = "vouchers"

urlpatterns = [
    path("", home.HomeView.as_view(), name="home"),
    path("campaigns/<slug:campaign>/", home.CampaignDetailView.as_view(), name="campaign-detail"),
    # Sales
    path("sales/", sales.SaleListView.as_view(), name="sale-list"),
    path("sales/export.csv", sales.SaleExportView.as_view(), name="sale-export"),
    path("sell/", sales.SaleStartView.as_view(), name="sale-start"),
    path("sales/<int:pk>/", sales.SaleDetailView.as_view(), name="sale-detail"),
    path("sales/<int:pk>/print/", sales.SalePrintView.as_view(), name="sale-print"),
    path("sales/<int:pk>/qr.png", sales.SaleQrView.as_view(), name="sale-qr"),
    path("campaigns/<slug:campaign>/sell/", sales.GiftTokenSellView.as_view(), name="sale-sell"),
    path("campaigns/<slug:campaign>/allocate/", sales.VoucherAllocateView.as_view(), name="sale-allocate"),
    path(
        "campaigns/<slug:campaign>/allocate/refresh/",
        sales.AvailabilityRefreshView.as_view(),
        name="availability-refresh",
    ),
    path("campaigns/<slug:campaign>/bulk-sales/new/", sales.BulkUploadView.as_view(), name="bulksale-upload"),
    path("bulk-sales/template.csv", sales.BulkTemplateCsvView.as_view(), name="bulksale-template"),
    path("bulk-sales/<int:pk>/", sales.BulkSaleDetailView.as_view(), name="bulksale-detail"),
    path("bulk-sales/<int:pk>/start/", sales.BulkActionView.as_view(action="start"), name="bulksale-start"),
    path(
        "bulk-sales/<int:pk>/cancel/", sales.BulkActionView.as_view(action="cancel"), name="bulksale-cancel"
    ),
    path(
        "bulk-sales/<int:pk>/resume/", sales.BulkActionView.as_view(action="resume"), name="bulksale-resume"
    ),
    path("bulk-sales/<int:pk>/progress.json", sales.BulkProgressView.as_view(), name="bulksale-progress"),
    path("bulk-sales/<int:pk>/result.csv", sales.BulkResultCsvView.as_view(), name="bulksale-result"),
]
