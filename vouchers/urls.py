from django.urls import path

from .views import audit, home, stock

app_name = "vouchers"

urlpatterns = [
    path("", home.HomeView.as_view(), name="home"),
    path("campaigns/<slug:campaign>/", home.CampaignDetailView.as_view(), name="campaign-detail"),
    path("audit/", audit.AuditEventListView.as_view(), name="audit-list"),
    path("stock/", stock.StockDashboardView.as_view(), name="stock-dashboard"),
    path("stock/<slug:campaign>/", stock.StockDetailView.as_view(), name="stock-detail"),
    path("stock/<slug:campaign>/thresholds/", stock.StockThresholdsView.as_view(), name="stock-thresholds"),
]
