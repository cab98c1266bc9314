from django.urls import path

from .views import audit, home

app_name = "vouchers"

urlpatterns = [
    path("", home.HomeView.as_view(), name="home"),
    path("campaigns/<slug:campaign>/", home.CampaignDetailView.as_view(), name="campaign-detail"),
    path("audit/", audit.AuditEventListView.as_view(), name="audit-list"),
]
