"""Issue 19, items 2 and 3 in a real browser (Chromium via Playwright), in English and German:
a lost sale settled with the code confirmed at LINA; a re-uploaded bulk file flagged and
confirmed, its rows following the job live, with totals in euro."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse

from tests.support.factories import PASSWORD
from tests.support.sales import csv_file
from vouchers.models import BulkSale, Sale
from vouchers.services import bulk_sales as bulk_svc
from vouchers.services import sales as svc

pytestmark = [pytest.mark.chromium, pytest.mark.django_db(transaction=True)]


def login(page, live_server, username: str, language: str = "en") -> None:
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
    )
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(live_server.url + reverse("vouchers:home"))


def lost_sale(fake_provider, marketing, lina_template) -> Sale:
    fake_provider.lose_answer_next("purchase")
    return svc.gift_token_sell(
        campaign=lina_template.campaign,
        user=marketing,
        request_token=svc.new_request_token(),
        amount=Decimal("25"),
        template=lina_template,
    )


@pytest.mark.parametrize(
    ("language", "words"),
    [
        (
            "en",
            {
                "settle": "Settle it with the evidence",
                "sold": "It went through: record the code",
                "says": "LINA says",
                "value": "25.00 €",
                "record": "Record as sold with this code",
                "done": "Gift token sold",
            },
        ),
        (
            "de",
            {
                "settle": "Mit Nachweis klären",
                "sold": "Er wurde ausgeführt: Code erfassen",
                "says": "LINA sagt",
                "value": "25,00 €",
                "record": "Als verkauft mit diesem Code erfassen",
                "done": "Geschenkgutschein verkauft",
            },
        ),
    ],
)
def test_settle_a_lost_sale_with_the_code_confirmed_at_lina(
    page, live_server, campaign_admin, marketing, lina_template, fake_provider, language, words
):
    sale = lost_sale(fake_provider, marketing, lina_template)
    login(page, live_server, "campaignadmin", language)
    page.goto(live_server.url + reverse("vouchers:sale-detail", args=[sale.pk]))
    assert page.locator(".alert-ok").count() == 0  # not sold until settled
    page.click(f"text={words['settle']}")
    page.check(f"text={words['sold']}")
    page.fill("input[name=code]", "fake 0000 0000 0001")
    page.fill("textarea[name=reason]", "LINA back office, 10:02")
    page.click("button.button-primary")
    card = page.locator("[data-evidence-card]")
    card.wait_for()
    assert words["says"] in card.inner_text() and words["value"] in card.inner_text()
    assert page.locator("[data-evidence-code]").inner_text() == "FAKE-0000-0000-0001"
    assert Sale.objects.get(pk=sale.pk).operation.state == "needs_review"  # shown, not recorded yet
    page.click("[data-evidence-confirm]")
    page.wait_for_selector(f".alert-ok:has-text('{words['done']}')")
    assert page.locator("[data-sale-code]").inner_text().endswith("0001")
    assert fake_provider.calls["check"] == 1 and fake_provider.calls["purchase"] == 1


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", {"flag": "sold before", "total": "3 gift tokens, 95.00 €", "sold": "95.00 €"}),
        ("de", {"flag": "bereits verkauft", "total": "3 Geschenkgutscheine, 95,00 €", "sold": "95,00 €"}),
    ],
)
def test_reupload_is_flagged_confirmed_and_rows_follow_the_job(
    page,
    live_server,
    marketing,
    lina_template,
    fake_provider,
    monkeypatch,
    tmp_path,
    language,
    words,
    settings,
):
    # Two rows in flight at once: three rows then finish in two steps the page can be seen to follow.
    settings.SALES_BULK_CONCURRENCY = 2
    queued: list[int] = []
    monkeypatch.setattr(
        "vouchers.tasks.sales.bulk_sale_run_task.apply_async", lambda args, **options: queued.append(args[0])
    )
    rows = ("25,Standard,,,,a@example.com", "30,Standard,1,Anna,Ben,", "40,Standard,,,,c@example.com")
    upload = tmp_path / "again.csv"
    upload.write_bytes(csv_file(*rows))
    login(page, live_server, "marketing", language)
    upload_url = live_server.url + reverse("vouchers:bulksale-upload", kwargs={"campaign": "lina-shop"})

    # The first file, sold completely.
    page.goto(upload_url)
    page.set_input_files("input[name=file]", str(upload))
    page.click("button.button-primary")
    assert words["total"] in page.locator("[data-bulk-total]").inner_text()
    page.click("[data-bulk-start]")
    page.wait_for_selector("[data-progress-bar]")
    bulk_svc.bulk_sale_run(bulk_sale_id=queued[-1])

    # The same file again: flagged, and the start waits for the confirmation.
    page.goto(upload_url)
    page.set_input_files("input[name=file]", str(upload))
    page.click("button.button-primary")
    page.wait_for_selector("[data-bulk-repeats]")
    assert page.locator("[data-row-repeat]").count() == 3
    assert words["flag"] in page.locator("[data-row-repeat]").first.inner_text()
    page.click("[data-bulk-start]")  # the browser refuses: the confirmation is required
    assert BulkSale.objects.order_by("-pk").first().state == "draft"
    fake_provider.slow_down("purchase", 0.6)
    page.check("[data-confirm-repeats]")
    page.click("[data-bulk-start]")
    page.wait_for_selector("[data-progress-bar]")
    # Remember every row state the page shows before its reload at the end.
    page.evaluate(
        """() => {
        const rows = document.querySelector('[data-bulk-rows] tbody');
        new MutationObserver(() => {
          const states = [...rows.querySelectorAll('[data-row-state]')].map(e => e.dataset.rowState);
          const seen = JSON.parse(sessionStorage.getItem('rows') || '[]');
          seen.push(states.join(','));
          sessionStorage.setItem('rows', JSON.stringify(seen));
        }).observe(rows, {childList: true, subtree: true});
    }"""
    )
    bulk_svc.bulk_sale_run(bulk_sale_id=queued[-1])
    page.wait_for_selector(
        "[data-progress-state]:has-text('finished'), [data-progress-state]:has-text('beendet')"
    )
    page.wait_for_selector("[data-amount-succeeded]")
    seen = page.evaluate("() => JSON.parse(sessionStorage.getItem('rows') || '[]')")
    # Live: a row shown sold while another is still waiting or being sold.
    assert any("succeeded" in states and ("waiting" in states or "pending" in states) for states in seen), (
        seen
    )
    assert page.locator("[data-row-state=succeeded]").count() == 3
    assert page.locator("[data-amount-succeeded]").inner_text() == words["sold"]
    assert fake_provider.calls["purchase"] == 6
