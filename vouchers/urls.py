from django.urls import path

from .views import (
    audit,
    day_close,
    desk,
    home,
    ledger,
    people,
    provider_health,
    sale_resolution,
    sales,
    stock,
)

app_name = "vouchers"

urlpatterns = [
    path("", home.HomeView.as_view(), name="home"),
    path("campaigns/<slug:campaign>/", home.CampaignDetailView.as_view(), name="campaign-detail"),
    path("audit/", audit.AuditEventListView.as_view(), name="audit-list"),
    path("ledger/", ledger.LedgerListView.as_view(), name="ledger-list"),
    path("ledger/search/", ledger.LedgerCodeSearchView.as_view(), name="ledger-search"),
    # People of the admin's campaigns (cashiers and marketing managers)
    path("people/", people.PeopleListView.as_view(), name="people-list"),
    path("people/new/", people.PersonCreateView.as_view(), name="person-create"),
    path("people/<int:pk>/", people.PersonDetailView.as_view(), name="person-detail"),
    path("people/<int:pk>/active/", people.PersonActiveView.as_view(), name="person-active"),
    path("providers/health/", provider_health.ProviderHealthView.as_view(), name="provider-health"),
    path("stock/", stock.StockDashboardView.as_view(), name="stock-dashboard"),
    path("stock/<slug:campaign>/", stock.StockDetailView.as_view(), name="stock-detail"),
    path("stock/<slug:campaign>/thresholds/", stock.StockThresholdsView.as_view(), name="stock-thresholds"),
    # Cashier desk (LINA check and redeem)
    path("desk/", desk.DeskHomeView.as_view(), name="desk-home"),
    path("desk/today/", desk.DeskTodayView.as_view(), name="desk-today"),
    path("desk/preferences/", desk.DeskPreferenceView.as_view(), name="desk-preferences"),
    path("desk/close/", day_close.DeskCloseView.as_view(), name="desk-close"),
    path("desk/close.csv", day_close.DeskCloseCsvView.as_view(), name="desk-close-csv"),
    path("desk/operations/<int:pk>/", desk.DeskOperationView.as_view(), name="desk-operation"),
    path("desk/<slug:campaign>/", desk.DeskCheckView.as_view(), name="desk-check"),
    path("desk/<slug:campaign>/redeem/", desk.DeskRedeemView.as_view(), name="desk-redeem"),
    # Day close of every cashier (campaign admins)
    path("day-close/", day_close.DayCloseView.as_view(), name="day-close"),
    path("day-close/export.csv", day_close.DayCloseCsvView.as_view(), name="day-close-csv"),
    # Settling operations whose outcome is unknown
    path("operations/review/", desk.OperationReviewView.as_view(), name="operation-review"),
    path("operations/<int:pk>/resolve/", desk.OperationResolveView.as_view(), name="operation-resolve"),
    # Sales
    path("sales/", sales.SaleListView.as_view(), name="sale-list"),
    path("sales/export.csv", sales.SaleExportView.as_view(), name="sale-export"),
    path("sales/search/", sales.SaleCodeSearchView.as_view(), name="sale-search"),
    path("sell/", sales.SaleStartView.as_view(), name="sale-start"),
    path("sales/<int:pk>/", sales.SaleDetailView.as_view(), name="sale-detail"),
    path("sales/<int:pk>/resolve/", sale_resolution.SaleResolveView.as_view(), name="sale-resolve"),
    path("sales/<int:pk>/print/", sales.SalePrintView.as_view(), name="sale-print"),
    path("sales/<int:pk>/send-again/", sales.SaleEmailView.as_view(), name="sale-email"),
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
