"""Fixtures of the browser tests: Debian's Chromium driven by Playwright against live_server."""

from __future__ import annotations

import os

import pytest
from django.db import connections

from tests.support.sales import lina_template, plain_template  # noqa: F401

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def page(live_server):
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
    # test body meanwhile are safe (they run in this thread, not in the loop).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(locale="en-GB")
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()
            # ORM calls made inside Playwright's context use their own connections (Django's
            # connections are context-local); close them, or PostgreSQL cannot drop the test DB.
            connections.close_all()
