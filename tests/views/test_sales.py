"""Sales pages with the Django test client and the fake provider."""

from __future__ import annotations

import base64
import csv
import io
import re
from decimal import Decimal

import pytest
import segno
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.support.factories import make_user
from tests.support.sales import csv_file
from vouchers.access import roles
from vouchers.models import AuditEvent, BulkSale, Sale, SaleTemplate
from vouchers.providers.errors import Misconfigured, OutOfStock
from vouchers.services import bulk_sales as bulk_svc
from vouchers.services import sales as svc

pytestmark = pytest.mark.django_db

SELL_URL = reverse("vouchers:sale-sell", kwargs={"campaign": "lina-shop"})
ALLOCATE_URL = reverse("vouchers:sale-allocate", kwargs={"campaign": "allsafe-vault"})
REFRESH_URL = reverse("vouchers:availability-refresh", kwargs={"campaign": "allsafe-vault"})
UPLOAD_URL = reverse("vouchers:bulksale-upload", kwargs={"campaign": "lina-shop"})


def token_from(response) -> str:
    return re.search(rb'name="request_token" value="([0-9a-f]{32})"', response.content).group(1).decode()


def sell_form(client, **data):
    response = client.get(SELL_URL)
    assert response.status_code == 200
    payload = {"request_token": token_from(response), "amount": "25.00", "layout": "", **data}
    return client.post(SELL_URL, payload)


# --- Sell one gift token -------------------------------------------------------------------------


def test_sell_with_layout_shows_code_qr_link_and_print_view(client, marketing, fake_provider, lina_template):
    client.force_login(marketing)
    response = sell_form(
        client,
        template=lina_template.pk,
        layout="2",
        from_name="Anna",
        for_name="Ben",
        email="ben@example.com",
    )
    sale = Sale.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "vouchers:sale-detail", args=[sale.pk]
    )
    page = client.get(response["Location"]).content.decode()
    code = fake_provider.sold[0].code
    assert "FAKE-0000-0000-0001" in page  # formatted full code for a role with view_full_codes
    assert reverse("vouchers:sale-qr", args=[sale.pk]) in page
    assert sale.layout_url in page and "Anna" in page
    qr = client.get(reverse("vouchers:sale-qr", args=[sale.pk]))
    assert qr.status_code == 200 and qr["Content-Type"] == "image/png"
    assert qr.content.startswith(b"\x89PNG")  # drawn locally: the fake sent no QR image
    print_page = client.get(reverse("vouchers:sale-print", args=[sale.pk])).content.decode()
    assert "data-print" in print_page and "FAKE-0000-0000-0001" in print_page
    assert code not in str(AuditEvent.objects.values_list("summary", "data"))


def test_qr_image_from_the_provider_is_served_as_sent(client, marketing, fake_provider, lina_template):
    buffer = io.BytesIO()
    segno.make("provider image").save(buffer, kind="png", scale=3)
    fake_provider.purchase_qrcode = base64.b64encode(buffer.getvalue()).decode()
    client.force_login(marketing)
    sell_form(client, template=lina_template.pk)
    qr = client.get(reverse("vouchers:sale-qr", args=[Sale.objects.get().pk]))
    assert qr.content == buffer.getvalue()


def test_double_submit_of_one_form_sells_once(client, marketing, fake_provider, lina_template):
    client.force_login(marketing)
    token = token_from(client.get(SELL_URL))
    payload = {"request_token": token, "amount": "25", "template": lina_template.pk, "layout": ""}
    first = client.post(SELL_URL, payload)
    second = client.post(SELL_URL, payload)
    assert first["Location"] == second["Location"]
    assert fake_provider.calls["purchase"] == 1 and Sale.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": "4.99"}, "between 5.00 € and 500.00 €"),
        ({"amount": "600"}, "between 5.00 € and 500.00 €"),
        ({"amount": "25.123"}, "at most 2 decimal places"),
        ({"amount": "zwanzig"}, "is not an amount"),
        ({"amount": ""}, "This field is required"),
        ({"email": "not-an-email"}, "not a valid e-mail"),
        ({"from_name": "Anna"}, "layout only"),
        ({"layout": "7"}, "Select a valid choice"),
        ({"request_token": "forged"}, "This form was incomplete"),
    ],
)
def test_bad_input_is_explained_next_to_the_field_and_nothing_is_sold(
    client, marketing, fake_provider, lina_template, data, message
):
    client.force_login(marketing)
    response = sell_form(client, template=lina_template.pk, **data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert fake_provider.calls["purchase"] == 0 and Sale.objects.count() == 0


def test_layout_of_another_template_is_refused(
    client, marketing, fake_provider, lina_template, plain_template
):
    client.force_login(marketing)
    response = sell_form(client, template=plain_template.pk, layout="1")
    assert "has no layouts" in response.content.decode()
    assert fake_provider.calls["purchase"] == 0


def test_lost_answer_page_says_needs_review(client, marketing, fake_provider, lina_template):
    fake_provider.lose_answer_next("purchase")
    client.force_login(marketing)
    response = sell_form(client, template=lina_template.pk)
    page = client.get(response["Location"]).content.decode()
    assert "Outcome unknown — needs review" in page and "will not be sent again" in page


def test_roles_and_scoping(
    client, cashier, campaign_admin, marketing, other_campaign, fake_provider, lina_template
):
    client.force_login(cashier)
    assert client.get(SELL_URL).status_code == 403
    assert client.get(reverse("vouchers:sale-list")).status_code == 403
    client.force_login(marketing)
    assert client.get(reverse("vouchers:sale-sell", kwargs={"campaign": "other-shop"})).status_code == 404
    assert client.get(reverse("vouchers:sale-sell", kwargs={"campaign": "allsafe-vault"})).status_code == 404
    assert client.get(reverse("vouchers:sale-allocate", kwargs={"campaign": "lina-shop"})).status_code == 404
    sell_form(client, template=lina_template.pk)
    sale = Sale.objects.get()
    # A campaign admin sees sales but not full codes, nor the QR image that carries the code.
    client.force_login(campaign_admin)
    page = client.get(reverse("vouchers:sale-detail", args=[sale.pk])).content.decode()
    assert sale.code_masked in page and "FAKE-0000" not in page
    assert client.get(reverse("vouchers:sale-qr", args=[sale.pk])).status_code == 403
    other = svc.gift_token_sell(
        campaign=other_campaign,
        user=None,
        request_token="f" * 32,
        amount=Decimal("10"),
        template=SaleTemplate.objects.create(campaign=other_campaign, name="O", template_hash="o"),
    )
    assert client.get(reverse("vouchers:sale-detail", args=[other.pk])).status_code == 404


def test_navigation_has_sell_and_sales_for_marketing(client, marketing):
    client.force_login(marketing)
    page = client.get(reverse("vouchers:home")).content.decode()
    assert reverse("vouchers:sale-start") in page and reverse("vouchers:sale-list") in page
    start = client.get(reverse("vouchers:sale-start")).content.decode()
    assert SELL_URL in start and ALLOCATE_URL in start and UPLOAD_URL in start


# --- Allocate ------------------------------------------------------------------------------------


def test_refresh_then_allocate_shows_every_field(client, marketing, fake_provider):
    fake_provider.set_stock("Takealot", 100, 3)
    client.force_login(marketing)
    assert "No availability fetched yet" in client.get(ALLOCATE_URL).content.decode()
    client.post(REFRESH_URL)
    response = client.get(ALLOCATE_URL)
    assert "Takealot — R 100 (3 left)" in response.content.decode()  # rand, marked (issue 19)
    response = client.post(
        ALLOCATE_URL, {"request_token": token_from(response), "voucher_type": "Takealot|100"}
    )
    sale = Sale.objects.get()
    page = client.get(response["Location"]).content.decode()
    voucher = fake_provider.allocated[0]
    for value in voucher.fields.values():
        assert str(value) in page
    assert sale.kind == "digital_voucher" and sale.vendor == "Takealot"


def test_allocate_refuses_a_type_not_in_the_latest_availability(client, marketing, fake_provider):
    fake_provider.set_stock("Takealot", 100, 3)
    client.force_login(marketing)
    client.post(REFRESH_URL)
    token = token_from(client.get(ALLOCATE_URL))
    response = client.post(ALLOCATE_URL, {"request_token": token, "voucher_type": "Amazon|500"})
    assert "not in the latest availability" in response.content.decode()
    assert fake_provider.calls["allocate"] == 0


def test_allocate_492_is_explained_with_what_to_check(client, marketing, fake_provider):
    fake_provider.set_stock("Takealot", 100, 3)
    fake_provider.fail_next("allocate", OutOfStock(status_code=492))
    client.force_login(marketing)
    client.post(REFRESH_URL)
    token = token_from(client.get(ALLOCATE_URL))
    response = client.post(ALLOCATE_URL, {"request_token": token, "voucher_type": "Takealot|100"})
    page = client.get(response["Location"]).content.decode()
    assert "Not sold" in page and "provider status 492" in page and "still hold vouchers" in page


def test_refresh_491_is_explained(client, marketing, fake_provider):
    fake_provider.fail_next("availability", Misconfigured(status_code=491))
    client.force_login(marketing)
    page = client.post(REFRESH_URL, follow=True).content.decode()
    assert "Link a vault to the campaign in the Allsafe management portal" in page


# --- Sales list ----------------------------------------------------------------------------------


def _sell_many(campaign, user, template, count, **kwargs):
    for _ in range(count):
        svc.gift_token_sell(
            campaign=campaign,
            user=user,
            request_token=svc.new_request_token(),
            amount=Decimal("25"),
            template=template,
            **kwargs,
        )


def test_sales_list_is_scoped_filtered_masked_and_constant_in_queries(
    client, marketing, fake_provider, lina_template
):
    client.force_login(marketing)
    _sell_many(lina_template.campaign, marketing, lina_template, 3)
    url = reverse("vouchers:sale-list")
    with CaptureQueriesContext(connection) as few:
        page = client.get(url).content.decode()
    assert page.count("••••") == 3 and "FAKE0000" not in page
    _sell_many(lina_template.campaign, marketing, lina_template, 12)
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)
    filtered = client.get(url, {"state": "failed"}).content.decode()
    assert "No sales match" in filtered
    ranged = client.get(url, {"amount_min": "30"}).content.decode()
    assert "No sales match" in ranged
    bad = client.get(url, {"sold_after": "not-a-date", "amount_min": "x"})
    assert bad.status_code == 200


def test_sales_export_neutralises_formulas(client, marketing, fake_provider, lina_template):
    _sell_many(lina_template.campaign, marketing, lina_template, 1, layout=1, from_name="=cmd|' /C calc'!A0")
    client.force_login(marketing)
    response = client.get(reverse("vouchers:sale-export"), {"campaign": lina_template.campaign.pk})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert response["Content-Type"].startswith("text/csv")
    assert rows[1][6] == "'=cmd|' /C calc'!A0"
    assert rows[1][9].startswith("••••")


# --- Bulk sales ----------------------------------------------------------------------------------


def upload(client, data: bytes, name="batch.csv"):
    return client.post(UPLOAD_URL, {"file": SimpleUploadedFile(name, data, content_type="text/csv")})


@pytest.fixture
def run_jobs_inline(monkeypatch):
    """The start button's task runs right away in this process (the real worker is tested elsewhere)."""
    monkeypatch.setattr(
        "vouchers.tasks.sales.bulk_sale_run_task.apply_async",
        lambda args, **options: bulk_svc.bulk_sale_run(bulk_sale_id=args[0]),
    )


def test_bulk_upload_preview_start_progress_and_result(
    client, marketing, fake_provider, lina_template, run_jobs_inline, django_capture_on_commit_callbacks
):
    client.force_login(marketing)
    response = upload(
        client, csv_file("25,Standard,,,,", "1000,Standard,,,,", "30,Standard,1,=HACK(),Ben,a@b.de")
    )
    bulk = BulkSale.objects.get()
    assert response["Location"] == reverse("vouchers:bulksale-detail", args=[bulk.pk])
    preview = client.get(response["Location"]).content.decode()
    assert "between 5.00 € and 500.00 €" in preview and "Sell 2 valid rows" in preview
    assert fake_provider.calls["purchase"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("vouchers:bulksale-start", args=[bulk.pk]))
    progress = client.get(reverse("vouchers:bulksale-progress", args=[bulk.pk])).json()
    assert progress | {"note": ""} == progress | {
        "total": 3,
        "valid": 2,
        "invalid": 1,
        "done": 2,
        "succeeded": 2,
        "percent": 100,
        "finished": True,
        "state": "finished",
    }
    result = client.get(reverse("vouchers:bulksale-result", args=[bulk.pk]))
    rows = list(csv.reader(io.StringIO(result.content.decode("utf-8-sig"))))
    assert rows[0][:6] == ["amount", "template", "layout", "from", "for", "email"]
    assert rows[2][7] == "invalid" and "between" in rows[2][10]
    assert rows[3][3] == "'=HACK()"
    assert rows[1][8].startswith("FAKE-") and rows[3][9].startswith("https://")


def test_bulk_upload_bad_files_say_why_and_create_nothing(client, marketing, lina_template):
    client.force_login(marketing)
    cases = [
        (b"", "The submitted file is empty"),
        ("amount;template\n12,5;Jürgen\n".encode("cp1252"), "not UTF-8"),
        (b"amount,colour\n25,red\n", "missing columns: template"),
        (csv_file(*["25,Standard"] * 10_000, header="amount,template"), "at most 1000"),
    ]
    for data, message in cases:
        response = upload(client, data)
        assert response.status_code == 200
        assert message in response.content.decode(), message
    assert BulkSale.objects.count() == 0


def test_bulk_upload_too_large_file(client, marketing, lina_template, settings):
    settings.SALES_BULK_MAX_BYTES = 50
    client.force_login(marketing)
    response = upload(client, csv_file(*["25,Standard"] * 10, header="amount,template"))
    assert "larger than" in response.content.decode()


def test_bulk_template_download_and_discard(client, marketing, lina_template):
    client.force_login(marketing)
    template = client.get(reverse("vouchers:bulksale-template"))
    assert template.content.decode("utf-8-sig").startswith("amount,template,layout,from,for,email")
    upload(client, template.content)
    bulk = BulkSale.objects.get()
    client.post(reverse("vouchers:bulksale-cancel", args=[bulk.pk]))
    bulk.refresh_from_db()
    assert bulk.state == "cancelled"
    assert client.post(reverse("vouchers:bulksale-start", args=[bulk.pk])).status_code == 302
    bulk.refresh_from_db()
    assert bulk.state == "cancelled"


def test_bulk_pages_are_scoped(client, marketing, outsider, lina_template):
    client.force_login(marketing)
    upload(client, csv_file("25,Standard,,,,"))
    bulk = BulkSale.objects.get()
    client.force_login(outsider)  # a campaign admin of another campaign, without sell_vouchers
    assert client.get(reverse("vouchers:bulksale-detail", args=[bulk.pk])).status_code == 403
    other_marketing = make_user("Marketing manager", outsider.memberships.get().campaign)
    client.force_login(other_marketing)
    for name in ("detail", "progress", "result"):
        assert client.get(reverse(f"vouchers:bulksale-{name}", args=[bulk.pk])).status_code == 404
    assert client.post(reverse("vouchers:bulksale-start", args=[bulk.pk])).status_code == 404


# --- Templates in the admin ----------------------------------------------------------------------


def test_campaign_admin_manages_templates_of_own_campaigns_audited(
    client, campaign_admin, lina_campaign, other_campaign
):
    client.force_login(campaign_admin)
    add_url = reverse("admin:vouchers_saletemplate_add")
    page = client.get(add_url).content.decode()
    assert "LINA shop" in page and "Other shop" not in page and "Allsafe vault" not in page
    response = client.post(
        add_url,
        {
            "campaign": lina_campaign.pk,
            "name": "Gold",
            "template_hash": "abc123",
            "layouts_text": "2, 1",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()
    template = SaleTemplate.objects.get(name="Gold")
    assert template.layouts == [1, 2]
    assert AuditEvent.objects.filter(action="sale_template.created", object_id=str(template.pk)).exists()
    bad = client.post(
        add_url, {"campaign": lina_campaign.pk, "name": "X", "template_hash": "a b", "layouts_text": "1, two"}
    )
    assert "not a layout number" in bad.content.decode() and "without spaces" in bad.content.decode()
    SaleTemplate.objects.create(campaign=other_campaign, name="Hidden", template_hash="h")
    listing = client.get(reverse("admin:vouchers_saletemplate_changelist")).content.decode()
    assert "Gold" in listing and "Hidden" not in listing


def test_needs_review_page_links_to_the_review_list_for_admins(
    client, marketing, campaign_admin, fake_provider, lina_template
):
    fake_provider.lose_answer_next("purchase")
    sale = svc.gift_token_sell(
        campaign=lina_template.campaign,
        user=marketing,
        request_token=svc.new_request_token(),
        amount=Decimal("25"),
        template=lina_template,
    )
    url = reverse("vouchers:sale-detail", args=[sale.pk])
    client.force_login(campaign_admin)
    page = client.get(url).content.decode()
    assert 'href="/operations/review/" data-review-link' in page
    client.force_login(marketing)  # marketing cannot resolve operations: no link
    assert "data-review-link" not in client.get(url).content.decode()


def test_sales_list_filters_by_campaign_seller_date_and_kind(
    client, marketing, campaign_admin, fake_provider, lina_template, allsafe_campaign
):
    _sell_many(lina_template.campaign, marketing, lina_template, 2)
    _sell_many(lina_template.campaign, campaign_admin, lina_template, 1)
    fake_provider.set_stock("Takealot", 100, 1)
    svc.digital_voucher_allocate(
        campaign=allsafe_campaign,
        user=marketing,
        request_token="9" * 32,
        vendor="Takealot",
        value=Decimal("100"),
    )
    client.force_login(marketing)
    url = reverse("vouchers:sale-list")

    def rows(**params):
        return client.get(url, params).context["table"].paginator.count

    assert rows() == 4
    assert rows(campaign=allsafe_campaign.pk) == 1
    assert rows(seller=campaign_admin.pk) == 1
    assert rows(kind="gift_token", state="succeeded") == 3
    today = timezone.localdate().isoformat()
    assert rows(sold_after=today, sold_before=today) == 4
    assert rows(sold_before="2000-01-01") == 0
    assert rows(amount_min="50", amount_max="150") == 1


def test_seller_choices_are_who_sold_in_my_campaigns_former_members_included(
    client, marketing, campaign_admin, superuser, fake_provider, lina_template, allsafe_campaign
):
    from vouchers.models import Membership

    # The seller filter's choices come from the sales (a loose index scan), not the memberships:
    # someone who sold in the campaign and has since left it is still offered, and found.
    _sell_many(lina_template.campaign, marketing, lina_template, 1)
    _sell_many(lina_template.campaign, campaign_admin, lina_template, 1)
    Membership.objects.filter(user=campaign_admin).delete()
    # Someone of another campaign only, and a member who never sold, are not offered.
    make_user(roles.MARKETING_MANAGER, allsafe_campaign, username="idle")
    client.force_login(marketing)
    response = client.get(reverse("vouchers:sale-list"))
    offered = list(response.context["filter"].form.fields["seller"].queryset)
    assert offered == [campaign_admin, marketing]  # ordered by username
    found = client.get(reverse("vouchers:sale-list"), {"seller": campaign_admin.pk})
    assert found.context["table"].paginator.count == 1
    # A viewer of the other campaign alone sees no sellers at all (nobody sold there).
    client.force_login(make_user(roles.MARKETING_MANAGER, allsafe_campaign, username="vaultonly"))
    response = client.get(reverse("vouchers:sale-list"))
    assert list(response.context["filter"].form.fields["seller"].queryset) == []


def test_sales_list_is_paginated(client, marketing, fake_provider, lina_template):
    _sell_many(lina_template.campaign, marketing, lina_template, 51)
    client.force_login(marketing)
    first = client.get(reverse("vouchers:sale-list"))
    assert len(first.context["table"].page.object_list) == 50
    second = client.get(reverse("vouchers:sale-list"), {"page": 2})
    assert len(second.context["table"].page.object_list) == 1
    assert client.get(reverse("vouchers:sale-list"), {"page": 99}).status_code in (200, 404)


def test_resume_button_requeues_a_stopped_batch(
    client, marketing, fake_provider, lina_template, run_jobs_inline, django_capture_on_commit_callbacks
):
    from vouchers.providers.errors import RateLimited

    client.force_login(marketing)
    upload(client, csv_file("25,Standard,,,,", "26,Standard,,,,"))
    bulk = BulkSale.objects.get()
    fake_provider.fail_next("purchase", RateLimited())
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("vouchers:bulksale-start", args=[bulk.pk]))
    page = client.get(reverse("vouchers:bulksale-detail", args=[bulk.pk])).content.decode()
    assert "Stopped at line 2" in page and "data-bulk-resume-form hidden" not in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("vouchers:bulksale-resume", args=[bulk.pk]))
    progress = client.get(reverse("vouchers:bulksale-progress", args=[bulk.pk])).json()
    assert (progress["succeeded"], progress["failed"], progress["resumable"]) == (1, 1, False)


@pytest.mark.parametrize(
    "params",
    [
        {"amount_min": " "},
        {"amount_min": " ", "amount_max": " "},
        {"amount_min": ":", "amount_max": "SNAN"},
        {"amount_min": "NaN"},
        {"amount_max": "Infinity"},
    ],
)
def test_sales_list_amount_filter_with_nonsense_is_a_message_not_an_error(client, marketing, params):
    """Found by the fuzz tests: blank-looking boxes and NaN/Infinity were server errors."""
    client.force_login(marketing)
    response = client.get(reverse("vouchers:sale-list"), params)
    assert response.status_code == 200
    if any(v.strip() for v in params.values()):
        assert "Enter a number." in response.content.decode()
