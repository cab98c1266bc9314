"""The portal's URLs plus a stand-in for the desk area's review page, to test the sales page's link."""

from django.http import HttpResponse
from django.urls import include, path

import vouchers.urls
from portal import urls as portal_urls

with_review = [
    *vouchers.urls.urlpatterns,
    path("operations/review/", lambda request: HttpResponse("review"), name="operation-review"),
]
urlpatterns = [p for p in portal_urls.urlpatterns if getattr(p, "app_name", None) != "vouchers"]
urlpatterns = [*urlpatterns, path("", include((with_review, "vouchers")))]
