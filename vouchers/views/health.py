"""Health endpoints for load balancers and orchestrators: no login, nothing revealed."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

log = logging.getLogger(__name__)


@never_cache
@login_not_required
def healthz(request):
    """The process is up and serving."""
    return JsonResponse({"status": "ok"})


def _database() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0] == 1


def _cache() -> bool:
    cache.set("readyz-probe", "1", 10)
    return cache.get("readyz-probe") == "1"


def _broker() -> bool:
    from portal.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return True


@never_cache
@login_not_required
def readyz(request):
    """Database, cache and broker reachable. Only names and ok/failing are shown."""
    results = {}
    for name, probe in (("database", _database), ("cache", _cache), ("broker", _broker)):
        try:
            results[name] = "ok" if probe() else "failing"
        except Exception:
            log.warning("readiness probe %s failed", name, exc_info=settings.DEBUG)
            results[name] = "failing"
    ready = all(value == "ok" for value in results.values())
    return JsonResponse(
        {"status": "ok" if ready else "failing", "checks": results}, status=200 if ready else 503
    )
