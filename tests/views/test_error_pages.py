"""Error pages: 400, 403, 404, 500 and the CSRF failure render the portal's own templates and,
with DEBUG off, reveal nothing of the inside (traceback, settings, paths, SQL, the exception text).

A test-only URLconf (this module, ``pytest.mark.urls``) adds views that raise; the portal's own
URLs stay in it, so the templates' links resolve.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404
from django.test import Client
from django.urls import path, reverse
from django.views.defaults import server_error

import portal.urls

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

# What an exception message might carry, none of which may reach the page.
INSIDE = 'SELECT "vouchers_campaign"."api_password_ciphertext" FROM /work/portal/settings.py secret-inside'


@login_not_required
def raise_bad_request(request):
    raise SuspiciousOperation(INSIDE)


@login_not_required
def raise_permission_denied(request):
    raise PermissionDenied(INSIDE)


@login_not_required
def raise_not_found(request):
    raise Http404(INSIDE)


@login_not_required
def raise_server_error(request):
    raise RuntimeError(INSIDE)


@login_not_required
def raise_database_error(request):
    raise DatabaseError(INSIDE)


@login_not_required
def raise_database_unreachable(request):
    raise OperationalError(f"connection to server at 127.0.0.1 failed: {INSIDE}")


@login_not_required
def raise_connection_closed(request):
    raise InterfaceError(f"connection already closed {INSIDE}")


handler500 = portal.urls.handler500

urlpatterns = [
    path("test-errors/503-down/", raise_database_unreachable),
    path("test-errors/503-closed/", raise_connection_closed),
    path("test-errors/400/", raise_bad_request),
    path("test-errors/403/", raise_permission_denied),
    path("test-errors/404/", raise_not_found),
    path("test-errors/500/", raise_server_error),
    path("test-errors/500-db/", raise_database_error),
    *portal.urls.urlpatterns,
]

REVEALING = [
    "Traceback",
    "secret-inside",
    "api_password_ciphertext",
    "SELECT",
    "/work/",
    str(settings.BASE_DIR),
]
REVEALING += [
    "SECRET_KEY",
    "DATABASES",
    "FIELD_ENCRYPTION_KEYS",
    "settings.py",
    "RuntimeError",
    "DatabaseError",
    "OperationalError",
    "InterfaceError",
    "127.0.0.1",
]


def assert_reveals_nothing(body: str) -> None:
    for needle in REVEALING:
        assert needle not in body, f"error page reveals {needle!r}"


@pytest.fixture
def quiet_client(settings):
    settings.DEBUG = False
    client = Client()
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize(
    ("url", "status", "heading"),
    [
        ("/test-errors/400/", 400, "Bad request"),
        ("/test-errors/403/", 403, "Not allowed"),
        ("/test-errors/404/", 404, "Not found"),
        ("/test-errors/500/", 500, "Something went wrong"),
        ("/test-errors/500-db/", 500, "Something went wrong"),
    ],
)
def test_error_pages_use_the_portals_templates_and_reveal_nothing(quiet_client, url, status, heading):
    response = quiet_client.get(url)
    assert response.status_code == status
    body = response.content.decode()
    assert f"<h1>{heading}</h1>" in body
    assert_reveals_nothing(body)


def test_error_pages_for_a_signed_in_user_too(quiet_client, cashier):
    quiet_client.force_login(cashier)
    for url, heading in (("/test-errors/404/", "Not found"), ("/test-errors/500/", "Something went wrong")):
        body = quiet_client.get(url).content.decode()
        assert heading in body
        assert_reveals_nothing(body)


def test_the_500_page_needs_no_database_and_no_request_context(rf, django_assert_max_num_queries):
    """When the database is what failed, the 500 page must still render: it runs no query
    and uses no context processor (Django renders it with an empty context)."""
    with django_assert_max_num_queries(0):
        response = server_error(rf.get("/"))
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


def test_csrf_failure_page_is_clear_translated_and_not_a_server_error(settings, cashier):
    settings.DEBUG = False
    client = Client(enforce_csrf_checks=True)
    client.force_login(cashier)
    url = reverse("vouchers:desk-check", kwargs={"campaign": "lina-shop"})
    response = client.post(url, {"code": "ABCD-EFGH-IJKL-MNOP"})
    assert response.status_code == 403
    body = response.content.decode()
    assert "The form has expired" in body and "reload the page" in body
    assert "CSRF" not in body and "Referer" not in body  # the technical reason is for developers
    assert "ABCD" not in body
    german = client.post(url, {"code": "x"}, HTTP_ACCEPT_LANGUAGE="de")
    assert german.status_code == 403
    assert 'lang="de"' in german.content.decode()
    assert "The form has expired" not in german.content.decode()


def test_csrf_failure_on_the_login_form(settings):
    settings.DEBUG = False
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "someone", "password": "wrong-password"})
    assert response.status_code == 403
    assert "The form has expired" in response.content.decode()
    assert "wrong-password" not in response.content.decode()


@pytest.mark.parametrize("url", ["/test-errors/503-down/", "/test-errors/503-closed/"])
def test_an_unreachable_database_is_a_503_that_says_try_again(
    quiet_client, url, django_assert_max_num_queries
):
    """A PostgreSQL restart: "back in a moment" with Retry-After, and the warning about goods."""
    response = quiet_client.get(url)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.content.decode()
    assert "<h1>Back in a moment</h1>" in body
    assert "do not hand over goods yet" in body and "Ware noch nicht aushändigen" in body
    assert_reveals_nothing(body)


def test_the_503_page_needs_no_database(rf, django_assert_max_num_queries):
    from portal.errors import server_error_or_database_unavailable

    try:
        raise OperationalError("the database system is starting up")
    except OperationalError:
        with django_assert_max_num_queries(0):
            response = server_error_or_database_unavailable(rf.get("/"))
    assert response.status_code == 503
