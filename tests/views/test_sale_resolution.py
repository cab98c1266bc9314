"""Settling a lost sale with evidence (issue 19, item 2): the code found at LINA is confirmed with
a check before anything is recorded; an allocate asks for the voucher; a sale without a code is
never shown as sold (detail, list, print view). English and German."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse

from tests.project.test_i18n import assert_german
from vouchers.models import AuditEvent, ProviderOperation, Sale
from vouchers.services import sales as svc

pytestmark = pytest.mark.django_db

FAKE_CODE = "FAKE000000000001"  # the fake provider's first sold code


def resolve_url(sale) -> str:
    return reverse("vouchers:sale-resolve", args=[sale.pk])


@pytest.fixture
def lost_sale(fake_provider, marketing, lina_template):
    """LINA sold the token (the fake knows its code) but the answer was lost."""
    fake_provider.lose_answer_next("purchase")
    sale = svc.gift_token_sell(
        campaign=lina_template.campaign,
        user=marketing,
        request_token=svc.new_request_token(),
        amount=Decimal("25"),
        template=lina_template,
    )
    assert sale.state == "needs_review"
    return sale


@pytest.fixture
def lost_voucher(fake_provider, marketing, allsafe_campaign):
    fake_provider.set_stock("Takealot", 100, 3)
    fake_provider.lose_answer_next("allocate")
    sale = svc.digital_voucher_allocate(
        campaign=allsafe_campaign,
        user=marketing,
        request_token=svc.new_request_token(),
        vendor="Takealot",
        value=Decimal("100"),
    )
    assert sale.state == "needs_review"
    return sale


@pytest.fixture
def code_missing(lina_campaign, marketing, lina_template):
    """A sale settled as gone through before evidence was asked: no code."""
    operation = ProviderOperation.objects.create(
        campaign=lina_campaign, user=marketing, kind="purchase", state="succeeded", amount="25.00"
    )
    return Sale.objects.create(
        campaign=lina_campaign,
        operation=operation,
        seller=marketing,
        kind="gift_token",
        amount="25.00",
        template=lina_template,
        template_name="Standard",
    )


@pytest.fixture
def german(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "de"
    return client


def check_id(body: str) -> str:
    return re.search(r'name="check" value="(\d+)"', body).group(1)


def test_sold_needs_the_code_confirmed_by_a_check_before_recording(
    client, campaign_admin, lost_sale, fake_provider
):
    client.force_login(campaign_admin)
    detail = client.get(reverse("vouchers:sale-detail", args=[lost_sale.pk])).content.decode()
    assert f'href="{resolve_url(lost_sale)}" data-resolve-link' in detail
    assert "Gift token sold" not in detail

    missing = client.post(resolve_url(lost_sale), {"outcome": "sold", "code": "", "reason": "seen"})
    assert "Enter the code found at LINA." in missing.content.decode()
    unknown = client.post(
        resolve_url(lost_sale), {"outcome": "sold", "code": "ZZZZ-ZZZZ-ZZZZ-ZZZZ", "reason": "seen"}
    )
    assert "LINA does not know this code" in unknown.content.decode()

    checks = fake_provider.calls["check"]
    shown = client.post(
        resolve_url(lost_sale), {"outcome": "sold", "code": "fake-0000-0000-0001", "reason": "seen"}
    )
    body = shown.content.decode()
    assert fake_provider.calls["check"] == checks + 1
    assert "data-evidence-card" in body and "FAKE-0000-0000-0001" in body and "25.00 €" in body
    assert 'class="badge badge-ok">valid' in body
    lost_sale.operation.refresh_from_db()
    assert lost_sale.operation.state == "needs_review"  # shown, not recorded
    check = ProviderOperation.objects.get(pk=check_id(body))
    assert check.kind == "check" and check.code_masked.endswith("0001")

    done = client.post(
        resolve_url(lost_sale),
        {
            "step": "confirm",
            "outcome": "sold",
            "code": FAKE_CODE,
            "check": check.pk,
            "reason": "LINA shows it",
        },
    )
    assert done.status_code == 302 and done["Location"] == reverse(
        "vouchers:sale-detail", args=[lost_sale.pk]
    )
    sale = Sale.objects.select_related("operation").get(pk=lost_sale.pk)
    assert (sale.operation.state, sale.full_code, sale.operation.resolved_by) == (
        "succeeded",
        FAKE_CODE,
        campaign_admin,
    )
    assert sale.operation.code_digest and sale.code_masked.endswith("0001")
    event = AuditEvent.objects.get(action="sale.resolved")
    assert event.data["text"]["code"] == "sale_resolved_sold" and FAKE_CODE not in str(event.data)
    page = client.get(done["Location"]).content.decode()
    assert "Gift token sold" in page and sale.code_masked in page
    assert client.get(reverse("vouchers:sale-print", args=[sale.pk])).status_code == 200
    assert client.get(resolve_url(sale)).status_code == 404  # settled: nothing left to settle


def test_confirm_without_a_matching_check_is_refused(client, campaign_admin, lost_sale, fake_provider):
    client.force_login(campaign_admin)
    fake_provider.add_token("OTHR-0000-0000-0050", "50")
    wrong_value = client.post(
        resolve_url(lost_sale), {"outcome": "sold", "code": "OTHR000000000050", "reason": "seen"}
    ).content.decode()
    assert "sold for 50.00 €, this sale was for 25.00 €" in wrong_value
    assert "data-evidence-card" not in wrong_value
    shown = client.post(resolve_url(lost_sale), {"outcome": "sold", "code": FAKE_CODE, "reason": "seen"})
    # The check confirmed FAKE…0001; a form changed to another code (or no check) is refused.
    for tampered in (
        {"code": "OTHR000000000050", "check": check_id(shown.content.decode())},
        {"code": FAKE_CODE},
    ):
        response = client.post(
            resolve_url(lost_sale), {"step": "confirm", "outcome": "sold", "reason": "x", **tampered}
        )
        assert response.status_code == 200 and "Check the code at LINA again" in response.content.decode()
    lost_sale.operation.refresh_from_db()
    assert lost_sale.operation.state == "needs_review"


def test_a_code_of_another_sale_is_refused(client, campaign_admin, lost_sale, marketing, lina_template):
    sold = svc.gift_token_sell(
        campaign=lina_template.campaign,
        user=marketing,
        request_token=svc.new_request_token(),
        amount=Decimal("25"),
        template=lina_template,
    )
    client.force_login(campaign_admin)
    body = client.post(
        resolve_url(lost_sale), {"outcome": "sold", "code": sold.full_code, "reason": "seen"}
    ).content.decode()
    assert f"already recorded for sale #{sold.pk}" in body


def test_not_sold_needs_a_reason_only(client, campaign_admin, lost_sale):
    client.force_login(campaign_admin)
    assert (
        "Say why"
        in client.post(resolve_url(lost_sale), {"outcome": "not_sold", "reason": ""}).content.decode()
    )
    response = client.post(resolve_url(lost_sale), {"outcome": "not_sold", "reason": "Not in LINA's list"})
    assert response.status_code == 302
    lost_sale.operation.refresh_from_db()
    assert lost_sale.operation.state == "failed"
    page = client.get(response["Location"]).content.decode()
    assert "alert-bad" in page and "alert-ok" not in page


def test_generic_review_cannot_record_a_sale_as_sold_without_its_code(client, campaign_admin, lost_sale):
    client.force_login(campaign_admin)
    url = reverse("vouchers:operation-resolve", args=[lost_sale.operation_id])
    page = client.get(url).content.decode()
    assert f'href="{resolve_url(lost_sale)}" data-sale-resolve-link' in page
    response = client.post(url, {"state": "succeeded", "reason": "looked"})
    assert response.status_code == 200 and "settled on the sale&#x27;s page" in response.content.decode()
    lost_sale.operation.refresh_from_db()
    assert lost_sale.operation.state == "needs_review"


def test_allocate_asks_for_the_voucher_details(client, campaign_admin, lost_voucher):
    client.force_login(campaign_admin)
    page = client.get(resolve_url(lost_voucher)).content.decode()
    assert 'name="pin"' in page and 'name="code"' not in page
    assert lost_voucher.operation.request_token in page  # to look it up in the Allsafe portal
    missing = client.post(resolve_url(lost_voucher), {"outcome": "sold", "pin": "", "reason": "vault log"})
    assert "Enter the voucher&#x27;s PIN" in missing.content.decode()
    response = client.post(
        resolve_url(lost_voucher),
        {
            "outcome": "sold",
            "pin": "PIN000000001",
            "serial": "S000001",
            "expiry": "2027-12-31",
            "reason": "vault log",
        },
    )
    assert response.status_code == 302
    sale = Sale.objects.select_related("operation").get(pk=lost_voucher.pk)
    assert sale.operation.state == "succeeded" and sale.full_code == "PIN000000001"
    assert sale.voucher_fields["serial"] == "S000001" and sale.sold
    assert "Voucher allocated" in client.get(response["Location"]).content.decode()


def test_a_sale_without_a_code_is_never_shown_as_sold(client, campaign_admin, code_missing):
    client.force_login(campaign_admin)
    detail = client.get(reverse("vouchers:sale-detail", args=[code_missing.pk])).content.decode()
    assert "Gift token sold" not in detail and "alert-ok" not in detail
    assert "data-code-missing" in detail and "Print view" not in detail
    assert f'href="{resolve_url(code_missing)}" data-resolve-link' in detail
    listing = client.get(reverse("vouchers:sale-list")).content.decode()
    assert '<span class="badge badge-warn">went through, code missing</span>' in listing
    printed = client.get(reverse("vouchers:sale-print", args=[code_missing.pk]))
    assert printed.status_code == 302
    assert "Nothing to print" in client.get(printed["Location"]).content.decode()
    # Only the code can be added; "did not go through" is not offered.
    page = client.get(resolve_url(code_missing)).content.decode()
    assert 'value="not_sold"' not in page


def test_a_code_can_be_added_to_a_sale_recorded_without_one(
    client, campaign_admin, code_missing, fake_provider
):
    fake_provider.add_token("LATE-0000-0000-0025", "25")
    client.force_login(campaign_admin)
    shown = client.post(
        resolve_url(code_missing), {"outcome": "sold", "code": "LATE000000000025", "reason": "LINA"}
    )
    response = client.post(
        resolve_url(code_missing),
        {
            "step": "confirm",
            "outcome": "sold",
            "code": "LATE000000000025",
            "check": check_id(shown.content.decode()),
            "reason": "LINA",
        },
    )
    assert response.status_code == 302
    sale = Sale.objects.get(pk=code_missing.pk)
    assert sale.sold and sale.full_code == "LATE000000000025"


def test_only_admins_of_the_campaign_settle(client, marketing, outsider, lost_sale):
    client.force_login(marketing)
    assert client.get(resolve_url(lost_sale)).status_code == 403
    assert (
        "data-resolve-link"
        not in client.get(reverse("vouchers:sale-detail", args=[lost_sale.pk])).content.decode()
    )
    client.force_login(outsider)
    assert client.get(resolve_url(lost_sale)).status_code == 404


def test_resolve_in_german(german, campaign_admin, lost_sale, code_missing):
    german.force_login(campaign_admin)
    assert_german(
        german.get(resolve_url(lost_sale)), must_contain=("Verkauf klären", "Bei LINA gefundener Code")
    )
    shown = german.post(resolve_url(lost_sale), {"outcome": "sold", "code": FAKE_CODE, "reason": "gesehen"})
    assert_german(shown, must_contain=("LINA sagt", "25,00 €", "Als verkauft mit diesem Code erfassen"))
    refused = german.post(
        resolve_url(lost_sale), {"outcome": "sold", "code": "ZZZZZZZZZZZZZZZZ", "reason": "x"}
    )
    assert_german(refused, must_contain=("LINA kennt diesen Code nicht",))
    detail = german.get(reverse("vouchers:sale-detail", args=[code_missing.pk]))
    assert_german(detail, must_contain=("Als ausgeführt erfasst, aber kein Code gespeichert",))


def test_allocate_voucher_details_in_german(german, campaign_admin, lost_voucher):
    german.force_login(campaign_admin)
    page = german.get(resolve_url(lost_voucher))
    assert_german(
        page,
        must_contain=(
            "Verkauf klären",
            "Er wurde ausgeführt: Gutschein erfassen",
            "An Allsafe gesendete Referenz",
            "Suchen Sie den Gutschein im Allsafe-Portal über die Referenz oben.",
            "PIN oder Code",
            "Seriennummer",
            "Ablaufdatum",
            "R 100,00",  # the rand, in the German format
        ),
    )
    assert 'name="code"' not in page.content.decode()  # no LINA code field for an allocate
    missing = german.post(resolve_url(lost_voucher), {"outcome": "sold", "pin": "", "reason": "Tresor-Log"})
    assert_german(
        missing,
        must_contain=(
            "Geben Sie die PIN oder den Code des Gutscheins so ein, wie ihn das Allsafe-Portal zeigt.",
        ),
    )
    assert Sale.objects.get(pk=lost_voucher.pk).operation.state == "needs_review"  # nothing recorded
    response = german.post(
        resolve_url(lost_voucher),
        {
            "outcome": "sold",
            "pin": "PIN000000009",
            "serial": "S000009",
            "expiry": "31.12.2027",
            "reason": "x",
        },
    )
    assert response.status_code == 302
    detail = german.get(response["Location"])
    assert_german(detail, must_contain=("Gutschein zugeteilt",))
    sale = Sale.objects.get(pk=lost_voucher.pk)
    assert sale.sold and sale.voucher_fields["serial"] == "S000009"
