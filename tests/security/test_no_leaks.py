"""No secret and no full voucher code in the logs; no secret in any page.

One end-to-end run against the sandbox providers (real HTTP, the real LINA and Allsafe clients):
an admin sets campaign credentials in the Django admin and tests the connections, a cashier
checks and redeems a token, marketing sells a gift token, allocates a digital voucher and runs a
bulk sale. Every logger is at DEBUG and captured *before* any handler's redaction filter, so
the code itself must not log what it must not (the filter is a last line of defence only).

Then: no secret (LINA password, shared key, session hash, Allsafe password and its basic-auth
header, FIELD_ENCRYPTION_KEYS, the user's own password) in any log line or HTML page; no full
voucher code in any log line, nor on list pages (full codes belong on the sale and print pages
of roles that need them, and on the cashier's token card).
"""

from __future__ import annotations

import base64
import logging
import re

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from tests.admin.test_credentials import campaign_form_data
from tests.support.factories import PASSWORD, make_user
from vouchers.access import roles
from vouchers.models import Campaign, Sale

pytestmark = pytest.mark.django_db

LINA_PASSWORD = "lina-pw-Zq8vK2mXr4"
LINA_SHARED_KEY = "lina-key-Hb7Ty3Wn9p"
ALLSAFE_PASSWORD = "allsafe-pw-Qe5Ru1Lo6d"
CODE = "LEAKTEST0000X7Q9"


class Capture(logging.Handler):
    """Every record as it would be written, exception text included."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def all_logs():
    """All loggers at DEBUG (those with their own level too), captured on the root logger."""
    capture = Capture()
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in logging.root.manager.loggerDict)]
    levels = {logger: logger.level for logger in loggers}
    disabled = {logger: logger.disabled for logger in loggers}
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    logging.getLogger().addHandler(capture)
    yield capture
    logging.getLogger().removeHandler(capture)
    for logger, level in levels.items():
        logger.setLevel(level)
        logger.disabled = disabled[logger]


class Pages:
    """A test client wrapper that keeps every HTML/text body it received, by URL."""

    def __init__(self, client):
        self.client = client
        self.bodies: list[tuple[str, str]] = []

    def _keep(self, url, response):
        if not response.streaming and response.get("Content-Type", "").startswith(
            ("text/", "application/json")
        ):
            self.bodies.append((url, response.content.decode(errors="replace")))
        return response

    def get(self, url, data=None, **kwargs):
        return self._keep(url, self.client.get(url, data, **kwargs))

    def post(self, url, data=None, **kwargs):
        return self._keep(url, self.client.post(url, data, **kwargs))


def hidden(response, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"'.encode(), response.content).group(1).decode()


@pytest.fixture
def providers(sandbox, settings):
    settings.PROVIDER_RETRY_BACKOFF_SECONDS = 0
    sandbox.set_lina_account("demo-shop", password=LINA_PASSWORD, shared_key=LINA_SHARED_KEY)
    sandbox.set_allsafe_campaign("demo-allsafe", password=ALLSAFE_PASSWORD)
    sandbox.add_token(CODE, "40.00")
    sandbox.add_template("Leak template", "tpl-leak-hash", layouts=[1])
    return sandbox


def admin_sets_up_campaigns(pages, sandbox, superuser):
    pages.client.force_login(superuser)
    # The admin's add form, filled like test_admin_credentials fills its change form.
    overrides = {"read_timeout": "5", "low_stock_threshold": "0"}
    lina = campaign_form_data(
        Campaign(
            name="Leak shop",
            slug="leak-shop",
            provider="lina",
            base_url=sandbox.lina_url,
            api_username="demo-shop",
        ),
        new_password="placeholder-first",
        new_shared_key=LINA_SHARED_KEY,
        **overrides,
    )
    allsafe = campaign_form_data(
        Campaign(
            name="Leak vault",
            slug="leak-vault",
            provider="allsafe",
            base_url=sandbox.allsafe_url,
            api_username="demo-allsafe",
        ),
        new_password=ALLSAFE_PASSWORD,
        **overrides,
    )
    for data in (lina, allsafe):
        response = pages.post(reverse("admin:vouchers_campaign_add"), data)
        assert response.status_code == 302, response.content.decode()[:3000]
    shop = Campaign.objects.get(slug="leak-shop")
    change = reverse("admin:vouchers_campaign_change", args=[shop.pk])
    # A credential change: the real password replaces the first one.
    pages.post(change, {**lina, "new_password": LINA_PASSWORD, "new_shared_key": ""})
    pages.get(change)
    vault = Campaign.objects.get(slug="leak-vault")
    for campaign in (shop, vault):
        url = reverse("admin:vouchers_campaign_test_connection", args=[campaign.pk])
        page = pages.post(url, follow=True)
        assert "✓" in page.content.decode(), page.content.decode()[:3000]
    template = {"campaign": shop.pk, "name": "Leak template", "template_hash": "tpl-leak-hash"}
    pages.post(
        reverse("admin:vouchers_saletemplate_add"), {**template, "layouts_text": "1", "is_active": "on"}
    )
    return shop, vault


def cashier_checks_and_redeems(pages, shop):
    till = make_user(roles.CASHIER, shop, username="leaktill")
    pages.client.logout()
    pages.post(reverse("login"), {"username": "leaktill", "password": PASSWORD})
    card = pages.post(reverse("vouchers:desk-check", args=[shop.slug]), {"code": CODE})
    data = {
        "code": hidden(card, "code"),
        "check": hidden(card, "check"),
        "request_token": hidden(card, "request_token"),
        "amount": "15.00",
    }
    result = pages.post(reverse("vouchers:desk-redeem", args=[shop.slug]), data, follow=True)
    assert "15" in result.content.decode()
    pages.get(reverse("vouchers:desk-today"))
    return till


def marketing_sells(pages, shop, vault, sandbox, monkeypatch, capture_on_commit):
    from vouchers.services import bulk_sales

    seller = make_user(roles.MARKETING_MANAGER, shop, vault, username="leakseller")
    pages.client.logout()
    pages.post(reverse("login"), {"username": "leakseller", "password": PASSWORD})
    sell_url = reverse("vouchers:sale-sell", args=[shop.slug])
    form = pages.get(sell_url)
    template_pk = shop.sale_templates.get().pk
    data = {"request_token": hidden(form, "request_token"), "amount": "25", "template": template_pk}
    sold = pages.post(sell_url, {**data, "layout": "1", "from_name": "Ann", "for_name": "Ben"}, follow=True)
    assert sold.status_code == 200
    # Allsafe: refresh the availability, then allocate the first voucher type on offer.
    sandbox.set_stock("Takealot", "100", 5, campaign="demo-allsafe")
    pages.post(reverse("vouchers:availability-refresh", args=[vault.slug]))
    allocate_url = reverse("vouchers:sale-allocate", args=[vault.slug])
    form = pages.get(allocate_url)
    choice = re.search(rb'<option value="([^"]+\|[^"]+)"', form.content).group(1).decode()
    pages.post(
        allocate_url, {"request_token": hidden(form, "request_token"), "voucher_type": choice}, follow=True
    )
    # Bulk: upload, start (the job runs right here), look at the result.
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("leak.csv", b"amount,template\n30,Leak template\n", content_type="text/csv")
    detail = pages.post(reverse("vouchers:bulksale-upload", args=[shop.slug]), {"file": upload}, follow=True)
    bulk_pk = int(re.search(r"/bulk-sales/(\d+)/", detail.redirect_chain[-1][0]).group(1))
    monkeypatch.setattr(
        "vouchers.tasks.sales.bulk_sale_run_task.apply_async",
        lambda args, **options: bulk_sales.bulk_sale_run(bulk_sale_id=args[0]),
    )
    with capture_on_commit(execute=True):
        pages.post(reverse("vouchers:bulksale-start", args=[bulk_pk]))
    pages.get(reverse("vouchers:bulksale-detail", args=[bulk_pk]))
    pages.get(reverse("vouchers:bulksale-progress", args=[bulk_pk]))
    return seller


def lina_session_hashes(sandbox) -> list[str]:
    return list(sandbox.server.store.lina_sessions)


@pytest.mark.usefixtures("all_logs")
def test_full_flows_leak_no_secret_and_no_full_code(
    client, providers, superuser, monkeypatch, all_logs, django_capture_on_commit_callbacks
):
    pages = Pages(client)
    shop, vault = admin_sets_up_campaigns(pages, providers, superuser)
    cashier_checks_and_redeems(pages, shop)
    marketing_sells(pages, shop, vault, providers, monkeypatch, django_capture_on_commit_callbacks)

    full_codes = [CODE, *(s.full_code for s in Sale.objects.all() if s.full_code)]
    assert len(full_codes) >= 4, "every flow produced a code: token, gift token, voucher, bulk sale"
    session_hashes = lina_session_hashes(providers)
    assert session_hashes, "the flows logged in to LINA"
    basic = base64.b64encode(f"demo-allsafe:{ALLSAFE_PASSWORD}".encode()).decode()
    secrets = {
        "LINA password": LINA_PASSWORD,
        "LINA shared key": LINA_SHARED_KEY,
        "Allsafe password": ALLSAFE_PASSWORD,
        "Allsafe basic auth": basic,
        "user password": PASSWORD,
        **{f"encryption key {i}": key for i, key in enumerate(django_settings.FIELD_ENCRYPTION_KEYS)},
        **{f"LINA session hash {i}": h for i, h in enumerate(session_hashes)},
    }
    logs = "\n".join(all_logs.lines)
    assert len(all_logs.lines) > 10, "the capture saw the flows' logging"
    for what, secret in secrets.items():
        assert secret not in logs, f"{what} in the logs"
    for code in full_codes:
        for variant in {code, re.sub(r"(.{4})(?!$)", r"\1-", code)}:
            assert variant not in logs, f"full code {code[-4:]} in the logs"
    for url, body in pages.bodies:
        for what, secret in secrets.items():
            assert secret not in body, f"{what} in the page {url}"


def test_lists_mask_codes_for_every_role(
    client, providers, superuser, monkeypatch, django_capture_on_commit_callbacks
):
    pages = Pages(client)
    shop, vault = admin_sets_up_campaigns(pages, providers, superuser)
    cashier_checks_and_redeems(pages, shop)
    marketing_sells(pages, shop, vault, providers, monkeypatch, django_capture_on_commit_callbacks)
    full_codes = [CODE, *(s.full_code for s in Sale.objects.all() if s.full_code)]
    admin = make_user(roles.CAMPAIGN_ADMIN, shop, vault, username="leakadmin")
    lists = [
        reverse("vouchers:sale-list"),
        reverse("vouchers:sale-export"),
        reverse("vouchers:audit-list"),
        reverse("vouchers:audit-list") + "?export=csv",
        reverse("vouchers:operation-review"),
        reverse("admin:vouchers_provideroperation_changelist"),
        reverse("admin:vouchers_auditevent_changelist"),
    ]
    for user in (admin, superuser):
        client.force_login(user)
        for url in lists:
            response = client.get(url)
            # Campaign admins see the ledger in the portal, not in the Django admin.
            assert response.status_code == 200 or (user is admin and "/admin/" in url), url
            raw = b"".join(response.streaming_content) if response.streaming else response.content
            body = raw.decode()
            for code in full_codes:
                assert code not in body and code.replace("-", "") not in body, (user, url)
    till = make_user(roles.CASHIER, shop, username="leaktill2")
    client.force_login(till)
    body = client.get(reverse("vouchers:desk-today")).content.decode()
    assert CODE not in body


def test_redaction_masks_codes_as_pages_show_them():
    from vouchers.security.redaction import redact

    assert redact("scanned LEAK-TEST-0000-X7Q9 at till 3") == "scanned ••••X7Q9 at till 3"
    assert redact("scanned LEAKTEST0000X7Q9") == "scanned ••••X7Q9"
    assert redact("request 3f2a-19bc") == "request 3f2a-19bc"  # not a code


def test_template_context_dumps_never_reach_a_handler(all_logs):
    logging.getLogger("django.template").debug("Failed lookup in context {'card': 'LEAK-TEST-0000-X7Q9'}")
    logging.getLogger("django.template").warning("a template problem worth knowing about")
    assert not any("LEAK-TEST" in line for line in all_logs.lines)
    assert any("worth knowing" in line for line in all_logs.lines)
