"""The server-error handler: a database that cannot be reached is "try again", not "broken".

While PostgreSQL restarts (a deploy, a fail-over) every request fails for a moment. Those
requests get 503 with Retry-After and a page saying so, instead of the generic 500 page, so
people retry rather than report a bug, and load balancers treat it as transient. Like 500.html
the page is static: it must render with no database, no session and no context processors.
"""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token
from django.views.defaults import server_error

RETRY_AFTER_SECONDS = 5


@requires_csrf_token
def server_error_or_database_unavailable(request, template_name="500.html"):
    exc = sys.exc_info()[1]
    if isinstance(exc, OperationalError | InterfaceError):
        page = loader.get_template("503.html").render()
        response = HttpResponse(page, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return server_error(request, template_name=template_name)
