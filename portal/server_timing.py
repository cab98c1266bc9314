"""Where a request's milliseconds go, as a ``Server-Timing`` header: for benchmarks only.

Off unless the environment variable ``PORTAL_SERVER_TIMING`` is ``1`` (portal/settings.py adds
the middleware only then, in any mode, so a benchmark can measure the production settings). The
header names the parts of one request the desk benchmark (bench/bench_desk.py) prints:

- ``sql``: time in database statements (``count`` of them), through ``connection.execute_wrapper``;
- ``tpl``: template rendering, without the SQL run while rendering (counted under ``sql``);
- ``provider``: time in provider HTTP calls (``count`` of them), added by providers/http.py;
- ``app``: the whole request inside Django, from the first middleware to the rendered response.

Nothing of the request's content is in the header: only durations and counts. ``add`` is a no-op
outside a timed request, so the provider layer may call it unconditionally.
"""

from __future__ import annotations

import os
import time
from contextvars import ContextVar

ENV_VAR = "PORTAL_SERVER_TIMING"
HEADER = "Server-Timing"

_parts: ContextVar[dict[str, float] | None] = ContextVar("server_timing_parts", default=None)


def enabled() -> bool:
    return os.environ.get(ENV_VAR, "") == "1"


def add(part: str, ms: float) -> None:
    """Add ``ms`` to ``part`` (and one to its count) of the request being timed, if any."""
    parts = _parts.get()
    if parts is None:
        return
    parts[part] = parts.get(part, 0.0) + ms
    parts[f"{part}_n"] = parts.get(f"{part}_n", 0) + 1


def header_value(parts: dict[str, float]) -> str:
    entries = []
    for part in ("sql", "tpl", "provider", "app"):
        entry = f"{part};dur={parts.get(part, 0.0):.3f}"
        if f"{part}_n" in parts or part in ("sql", "provider"):
            entry += f';desc="{int(parts.get(f"{part}_n", 0))}"'
        entries.append(entry)
    return ", ".join(entries)


def parse(value: str) -> dict[str, float]:
    """``{"sql": ms, "sql_n": count, ...}`` from a header this module wrote."""
    parts: dict[str, float] = {}
    for entry in value.split(","):
        name, *params = (p.strip() for p in entry.split(";"))
        for param in params:
            key, _sep, raw = param.partition("=")
            if key == "dur":
                parts[name] = float(raw)
            elif key == "desc":
                parts[f"{name}_n"] = float(raw.strip('"'))
    return parts


class ServerTimingMiddleware:
    """First in MIDDLEWARE, so ``app`` covers every other middleware and the rendering."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.db import connection

        parts: dict[str, float] = {}
        token = _parts.set(parts)
        started = time.perf_counter()
        try:
            with connection.execute_wrapper(_timed_sql):
                response = self.get_response(request)
        finally:
            _parts.reset(token)
        parts["app"] = (time.perf_counter() - started) * 1000
        parts.pop("app_n", None)
        response[HEADER] = header_value(parts)
        return response

    def process_template_response(self, request, response):
        # TemplateResponse renders after the view returns: time that, less the SQL inside it.
        parts = _parts.get()
        if parts is None:
            return response
        render = response.render

        def timed_render():
            sql_before = parts.get("sql", 0.0)
            started = time.perf_counter()
            try:
                return render()
            finally:
                elapsed = (time.perf_counter() - started) * 1000
                add("tpl", elapsed - (parts.get("sql", 0.0) - sql_before))

        response.render = timed_render
        return response


def _timed_sql(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        add("sql", (time.perf_counter() - started) * 1000)
