from django.urls import path

from .views import audit, desk, home, stock

app_name = "vouchers"

urlpatterns = [
    path("", home.HomeView.as_view(), name="home"),
    path("campaigns/<slug:campaign>/", home.CampaignDetailView.as_view(), name="campaign-detail"),
    path("audit/", audit.AuditEventListView.as_view(), name="audit-list"),
    path("stock/", stock.StockDashboardView.as_view(), name="stock-dashboard"),
    path("stock/<slug:campaign>/", stock.StockDetailView.as_view(), name="stock-detail"),
    path("stock/<slug:campaign>/thresholds/", stock.StockThresholdsView.as_view(), name="stock-thresholds"),
    # Cashier desk (LINA check and redeem)
    path("desk/", desk.DeskHomeView.as_view(), name="desk-home"),
    path("desk/today/", desk.DeskTodayView.as_view(), name="desk-today"),
    path("desk/operations/<int:pk>/", desk.DeskOperationView.as_view(), name="desk-operation"),
    path("desk/<slug:campaign>/", desk.DeskCheckView.as_view(), name="desk-check"),
    path("desk/<slug:campaign>/redeem/", desk.DeskRedeemView.as_view(), name="desk-redeem"),
    # Settling operations whose outcome is unknown
    path("operations/review/", desk.OperationReviewView.as_view(), name="operation-review"),
    path("operations/<int:pk>/resolve/", desk.OperationResolveView.as_view(), name="operation-resolve"),
]
