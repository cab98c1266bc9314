from django.urls import path

from .views import desk, home

app_name = "vouchers"

urlpatterns = [
    path("", home.HomeView.as_view(), name="home"),
    path("campaigns/<slug:campaign>/", home.CampaignDetailView.as_view(), name="campaign-detail"),
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
