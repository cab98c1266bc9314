"""Selling in a real browser (Chromium via Playwright) against live_server and the fake provider.

The bulk-sale test runs the job in the test's own thread while the browser polls the progress
endpoint: the start button's task is replaced by a recorder, the test then calls the job's
service (bulk_sale_run) itself. The live server answers the browser from its own thread
meanwhile, so the page shows the bar moving, as it would with a Celery worker.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.support.factories import PASSWORD
from tests.support.sales import csv_file
from vouchers.models import BulkSale
from vouchers.services import bulk_sales as bulk_svc

pytestmark = [pytest.mark.chromium, pytest.mark.django_db(transaction=True)]


def login(page, live_server, username: str) -> None:
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(live_server.url + reverse("vouchers:home"))


def test_sell_one_token_with_a_layout_and_see_the_qr_code(
    page, live_server, marketing, lina_template, fake_provider
):
    login(page, live_server, "marketing")
    page.goto(live_server.url + reverse("vouchers:sale-sell", kwargs={"campaign": "lina-shop"}))
    names = page.locator("[data-layout-only]")
    assert not names.is_visible()  # from/for are asked only with a layout
    page.fill("input[name=amount]", "25,50")
    page.select_option("select[name=template]", label="Standard")
    page.select_option("select[name=layout]", value="2")
    assert names.is_visible()
    page.fill("input[name=from_name]", "Anna")
    page.fill("input[name=for_name]", "Ben")
    page.fill("input[name=email]", "ben@example.com")
    page.click("button.button-primary")
    page.wait_for_selector("text=Gift token sold")
    assert page.locator("[data-sale-code]").inner_text() == "FAKE-0000-0000-0001"
    qr = page.locator("img[data-sale-qr]")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=qr.element_handle())
    assert page.locator("[data-layout-link]").get_attribute("href").endswith("FAKE000000000001")
    assert fake_provider.calls["purchase"] == 1
    request = fake_provider.requests[0][1]
    assert (str(request.amount), request.layout, request.from_name) == ("25.50", 2, "Anna")


def test_upload_twenty_rows_and_watch_the_progress_bar_finish(
    page, live_server, marketing, lina_template, fake_provider, monkeypatch, tmp_path
):
    queued: list[int] = []
    monkeypatch.setattr(
        "vouchers.tasks.sales.bulk_sale_run_task.apply_async", lambda args, **options: queued.append(args[0])
    )
    fake_provider.slow_down("purchase", 0.2)
    upload = tmp_path / "twenty.csv"
    upload.write_bytes(csv_file(*[f"{10 + n},Standard,,,,row{n}@example.com" for n in range(20)]))

    login(page, live_server, "marketing")
    page.goto(live_server.url + reverse("vouchers:bulksale-upload", kwargs={"campaign": "lina-shop"}))
    page.set_input_files("input[name=file]", str(upload))
    page.click("button.button-primary")
    start = page.locator("[data-bulk-start]")
    assert start.inner_text() == "Sell 20 valid rows"
    start.click()
    page.wait_for_selector("[data-progress-bar]")
    assert queued == [BulkSale.objects.get().pk]
    # Remember every value the bar shows, across the reload at the end.
    page.evaluate(
        """() => {
        const bar = document.querySelector('[data-progress-bar]');
        new MutationObserver(() => {
          const seen = JSON.parse(sessionStorage.getItem('seen') || '[]');
          seen.push(parseInt(bar.getAttribute('aria-valuenow'), 10));
          sessionStorage.setItem('seen', JSON.stringify(seen));
        }).observe(bar, {attributes: true});
    }"""
    )
    bulk_svc.bulk_sale_run(bulk_sale_id=queued[0])  # the job, here, while the browser polls
    page.wait_for_selector("[data-progress-state]:has-text('finished')")
    assert page.locator("[data-progress-bar]").get_attribute("aria-valuenow") == "100"
    assert page.locator("[data-progress-succeeded]").inner_text() == "20"
    seen = page.evaluate("() => JSON.parse(sessionStorage.getItem('seen') || '[]')")
    assert any(0 < value < 100 for value in seen), seen  # it moved, not just jumped to the end
    assert fake_provider.calls["purchase"] == 20
    with page.expect_download() as download:
        page.click("[data-bulk-result]")
    assert download.value.suggested_filename.endswith("-result.csv")
