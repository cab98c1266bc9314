"""The sales list in a real browser: find a sale by its full code (posted, not in the address),
by recipient, download the CSV of what is shown, and send the token to the customer again."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail
from django.urls import reverse

from tests.e2e.test_sales_browser import login
from vouchers.services import sales as svc
from vouchers.values.codes import format_code

pytestmark = [pytest.mark.chromium, pytest.mark.django_db(transaction=True)]

WORDS = {
    "en": {
        "email_header": "E-mail",
        "sent": "The gift token was e-mailed to ben@example.com.",
        "again": "less than a minute ago",
        "subject": "Your gift token from LINA shop",
    },
    "de": {
        "email_header": "E-Mail",
        "sent": "Der Geschenkgutschein wurde per E-Mail an ben@example.com geschickt.",
        "again": "vor weniger als einer Minute",
        "subject": "Ihr Geschenkgutschein von LINA shop",
    },
}


def sell(template, user, **kwargs):
    return svc.gift_token_sell(
        campaign=template.campaign,
        user=user,
        request_token=svc.new_request_token(),
        amount=Decimal("25"),
        template=template,
        **kwargs,
    )


@pytest.mark.parametrize("language", ["en", "de"])
def test_find_by_code_and_recipient_export_and_send_again(
    page, live_server, marketing, lina_template, fake_provider, language
):
    words = WORDS[language]
    wanted = sell(
        lina_template, marketing, layout=1, from_name="Anna", for_name="Ben", email="ben@example.com"
    )
    sell(lina_template, marketing, email="carla@example.com")
    sell(lina_template, marketing)
    page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    login(page, live_server, "marketing")
    seen_urls: list[str] = []
    page.on("request", lambda request: seen_urls.append(request.url))

    # By code: typed with dashes in lower case, posted; the address names only a reference.
    page.goto(live_server.url + reverse("vouchers:sale-list"))
    page.fill("[data-code-search] input[name=code]", format_code(wanted.full_code).lower())
    page.click("[data-code-search] button[type=submit]")
    page.wait_for_selector("[data-searched-code]")
    assert page.locator("table tbody tr").count() == 1
    assert wanted.code_masked in page.locator("table tbody").inner_text()
    assert f"code_of={wanted.pk}" in page.url
    assert not any(wanted.full_code in url.upper().replace("-", "") for url in seen_urls)

    # By recipient, then the CSV of exactly what the page shows, with the e-mail column.
    page.goto(live_server.url + reverse("vouchers:sale-list"))
    page.fill("input[name=recipient]", "BEN")
    page.click("button.button-primary")
    page.wait_for_url("**recipient=BEN**")
    assert page.locator("table tbody tr").count() == 1
    with page.expect_download() as download_info:
        page.click("[data-sale-export]")
    text = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row[words["email_header"]] for row in rows] == ["ben@example.com"]

    # Send to the customer again: a confirmation step, then a success message; a second send
    # right away is refused in the error style.
    page.goto(live_server.url + reverse("vouchers:sale-detail", kwargs={"pk": wanted.pk}))
    page.click("[data-sale-email-again]")
    assert page.locator("[data-sale-email]").inner_text() == "ben@example.com"
    assert mail.outbox == []
    page.click("[data-email-confirm]")
    page.wait_for_selector(".message-success")
    assert page.locator(".message-success").inner_text() == words["sent"]
    (message,) = mail.outbox
    assert message.subject == words["subject"] and format_code(wanted.full_code) in message.body
    page.click("[data-sale-email-again]")
    page.click("[data-email-confirm]")
    page.wait_for_selector(".message-error")
    assert words["again"] in page.locator(".message-error").inner_text()
    assert page.locator(".message-success").count() == 0
    assert len(mail.outbox) == 1
