"""Stored messages are shown in the reader's language (issue 19, item 7): audit summaries, settle
notes on the printed slip, bulk row errors and what staff were told, each kept as a code with
parameters; the provider's own words are labelled; old rows without a code show their text."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from vouchers.models import AuditEvent, ProviderOperation
from vouchers.providers import errors
from vouchers.services import bulk_sales as bulk_svc
from vouchers.services.audit import audit_record
from vouchers.services.operations import reconcile_verdict
from vouchers.services.stock import stock_poll
from vouchers.staff_text import told_staff

pytestmark = pytest.mark.django_db


def browser(language: str, user) -> Client:
    """A browser that chose ``language`` with the language switcher, signed in as ``user``."""
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    client.force_login(user)
    return client


def test_audit_summaries_follow_the_readers_language(campaign_admin, allsafe_campaign, fake_provider):
    fake_provider.set_stock("Takealot", 100, 3)
    stock_poll(campaign_id=allsafe_campaign.pk)  # a background job: writes in English
    audit_record(actor=None, action="legacy.note", campaign=allsafe_campaign, summary="Written before codes")
    url = reverse("vouchers:audit-list")

    english = browser("en", campaign_admin).get(url).content.decode()
    german = browser("de", campaign_admin).get(url).content.decode()

    assert "low stock alert opened for Allsafe vault: Only 3 Takealot R 100.00 vouchers are left" in english
    assert (
        "Warnung „niedriger Bestand“ für Allsafe vault geöffnet: Nur noch 3 Gutscheine Takealot R 100,00 übrig"
        in german
    )
    assert "alert opened" not in german
    assert "Written before codes" in english and "Written before codes" in german  # old rows: as stored
    event = AuditEvent.objects.get(action="stock.alert_opened")
    assert event.message["code"] == "stock.alert_opened" and event.summary.startswith("low stock alert")


def test_the_settle_note_on_the_slip_is_in_the_readers_language(cashier, lina_campaign):
    operation = ProviderOperation(balance_before=Decimal("50.00"), amount=Decimal("12.50"))
    verdict = reconcile_verdict(operation=operation, remaining=Decimal("37.50"), settled=True)
    settled = ProviderOperation.objects.create(
        campaign=lina_campaign,
        user=cashier,
        kind="redeem",
        state="succeeded",
        amount=Decimal("12.50"),
        balance_before=Decimal("50.00"),
        balance_after=Decimal("37.50"),
        resolved_at=timezone.now(),
        resolution_note=verdict.note,
        resolution_message=verdict.message,
        request_token="settled-1",
    )
    url = reverse("vouchers:desk-operation", args=[settled.pk])

    english = browser("en", cashier).get(url).content.decode()
    german = browser("de", cashier).get(url).content.decode()

    assert "Balance dropped from 50.00 € to 37.50 € by the amount: redeemed." in english
    assert "Guthaben von 50,00 € um den Betrag auf 37,50 € gesunken: eingelöst." in german
    assert "Balance dropped" not in german


def test_bulk_row_errors_follow_the_readers_language(marketing, lina_campaign, lina_template):
    data = b"amount,template,layout,from,for,email\r\n25,Nope,,,,\r\n25,,,,,\r\n3.00,Standard,,,,\r\n"
    bulk = bulk_svc.bulk_sale_create(campaign=lina_campaign, user=marketing, filename="b.csv", data=data)
    url = reverse("vouchers:bulksale-detail", args=[bulk.pk])

    english = browser("en", marketing).get(url).content.decode()
    german = browser("de", marketing).get(url).content.decode()

    assert "There is no active template “Nope”" in english and "Name the template." in english
    assert "Geben Sie die Vorlage an." in german and "Name the template." not in german
    assert "5,00 €" in german  # the amount range, with the reader's separators
    assert bulk.rows.get(line_number=2).errors == [
        "There is no active template “Nope” (templates: Standard)."
    ]


def test_what_staff_were_told_is_rendered_again_and_the_providers_words_are_labelled(
    campaign_admin, lina_campaign
):
    refused = errors.RedeemRefused("Gutschein ist gesperrt")
    ProviderOperation.objects.create(
        campaign=lina_campaign,
        kind="redeem",
        state="failed",
        amount=Decimal("5.00"),
        error_code=refused.code,
        error_message=refused.message,
        staff_text=told_staff(refused, money_moving=True),
        request_token="refused-1",
    )
    url = reverse("vouchers:ledger-list")

    english = browser("en", campaign_admin).get(url).content.decode()
    german = browser("de", campaign_admin).get(url).content.decode()

    assert (
        "The provider refused to redeem this token: “Gutschein ist gesperrt” (the provider&#x27;s own words)"
        in (english)
    )
    assert "abgelehnt: „Gutschein ist gesperrt“ (Wortlaut des Anbieters)" in german
    assert 'class="alert alert-ok"' not in english and 'class="alert alert-ok"' not in german


def _audit_pages(user) -> tuple[str, str]:
    url = reverse("vouchers:audit-list")
    return browser("en", user).get(url).content.decode(), browser("de", user).get(url).content.decode()


def test_membership_summaries_follow_the_readers_language(campaign_admin, lina_campaign, cashier):
    from vouchers.models import Membership
    from vouchers.services.campaigns import membership_remove

    membership_remove(membership=Membership.objects.get(user=cashier, campaign=lina_campaign), actor=None)

    english, german = _audit_pages(campaign_admin)

    assert f"cashier removed from {lina_campaign.name}" in english
    assert f"cashier aus {lina_campaign.name} entfernt" in german
    assert AuditEvent.objects.get(action="membership.removed").summary == (
        f"cashier removed from {lina_campaign.name}"
    )


def test_people_summaries_follow_the_readers_language(campaign_admin, cashier):
    from vouchers.services.people import person_active_set

    person_active_set(actor=campaign_admin, person_id=cashier.pk, active=False)

    english, german = _audit_pages(campaign_admin)

    assert "User cashier deactivated by a campaign admin" in english
    assert "Benutzer cashier von einem Kampagnenadmin deaktiviert" in german


def test_re_encryption_summaries_follow_the_readers_language(settings, campaign_admin, lina_campaign):
    from cryptography.fernet import Fernet

    from vouchers.security import crypto
    from vouchers.services.encryption import encryption_rotate

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    crypto._multifernet.cache_clear()
    try:
        encryption_rotate()
    finally:
        crypto._multifernet.cache_clear()

    english, german = _audit_pages(campaign_admin)

    assert f"Credentials of {lina_campaign.name} re-encrypted with the newest key" in english
    assert f"Zugangsdaten von {lina_campaign.name} mit dem neuesten Schlüssel neu verschlüsselt" in german


def test_sale_template_summaries_follow_the_readers_language(campaign_admin, lina_campaign):
    from vouchers.models import SaleTemplate
    from vouchers.services.sales import sale_template_save

    template = SaleTemplate(campaign=lina_campaign, name="Gold", template_hash="h", allowed_layouts=[1])
    sale_template_save(template=template, actor=campaign_admin)

    english, german = _audit_pages(campaign_admin)

    assert "Sale template Gold created" in english
    assert "Verkaufsvorlage Gold angelegt" in german
    assert AuditEvent.objects.get(action="sale_template.created").summary == "Sale template Gold created"


def test_bulk_sale_summaries_follow_the_readers_language(
    campaign_admin, marketing, lina_campaign, lina_template
):
    data = b"amount,template,layout,from,for,email\r\n25,Standard,,,,\r\n25,,,,,\r\n"
    bulk_svc.bulk_sale_create(campaign=lina_campaign, user=marketing, filename="b.csv", data=data)

    english, german = _audit_pages(campaign_admin)

    assert "Bulk sale file b.csv uploaded: 1 valid of 2 rows" in english
    assert "Massenverkaufsdatei b.csv hochgeladen: 1 von 2 Zeilen gültig" in german


def test_the_review_pages_label_the_providers_words_in_the_readers_language(campaign_admin, lina_campaign):
    refused = errors.RedeemRefused("gesperrt")
    operation = ProviderOperation.objects.create(
        campaign=lina_campaign,
        kind="redeem",
        state="needs_review",
        amount=Decimal("5.00"),
        error_code=refused.code,
        error_message=refused.message,
        staff_text=told_staff(refused, money_moving=True),
        request_token="review-1",
    )
    pages = [reverse("vouchers:operation-review"), reverse("vouchers:operation-resolve", args=[operation.pk])]

    english = [browser("en", campaign_admin).get(url).content.decode() for url in pages]
    german = [browser("de", campaign_admin).get(url).content.decode() for url in pages]

    assert "The provider refused to redeem this token" in english[0]
    assert "Der Anbieter hat die Einlösung dieses Gutscheins abgelehnt" in german[0]
    assert "“gesperrt” (the provider&#x27;s own words)" in english[1]
    assert "„gesperrt“ (Wortlaut des Anbieters)" in german[1]
    assert "The provider refused" not in german[0] and "The provider refused" not in german[1]


def test_a_stock_alerts_resolution_follows_the_readers_language(
    campaign_admin, allsafe_campaign, fake_provider
):
    from vouchers.models import StockAlert

    fake_provider.set_stock("Takealot", 100, 3)
    stock_poll(campaign_id=allsafe_campaign.pk)
    fake_provider.set_stock("Takealot", 100, 40)
    stock_poll(campaign_id=allsafe_campaign.pk)  # a background job: writes in English
    url = reverse("vouchers:stock-detail", kwargs={"campaign": allsafe_campaign.slug})

    english = browser("en", campaign_admin).get(url).content.decode()
    german = browser("de", campaign_admin).get(url).content.decode()

    assert "40 left (threshold 10)." in english
    assert "40 übrig (Schwellenwert 10)." in german and "40 left" not in german
    assert StockAlert.objects.get().resolution == "40 left (threshold 10)."  # English, for CSV and admin


def test_account_summaries_follow_the_readers_language(superuser, cashier):
    from vouchers.services.accounts import user_created_record

    user_created_record(actor=superuser, user=cashier)

    english, german = _audit_pages(superuser)

    assert "User cashier created" in english
    assert "Benutzer cashier angelegt" in german
    assert AuditEvent.objects.get(action="user.created").summary == "User cashier created"


def test_stock_threshold_summaries_follow_the_readers_language(campaign_admin, allsafe_campaign):
    from vouchers.services.stock import stock_thresholds_save

    stock_thresholds_save(campaign=allsafe_campaign, actor=campaign_admin, default_threshold=20, overrides=[])

    english, german = _audit_pages(campaign_admin)

    assert "Low-stock thresholds of Allsafe vault changed" in english
    assert "Schwellenwerte für niedrigen Bestand von Allsafe vault geändert" in german


def test_operation_summaries_follow_the_readers_language(campaign_admin, lina_campaign, cashier):
    from datetime import timedelta

    from vouchers.services.operations import operations_reconcile_due
    from vouchers.services.pipeline import operation_claim

    purchase = operation_claim(campaign=lina_campaign, user=cashier, kind="purchase").operation
    ProviderOperation.objects.filter(pk=purchase.pk).update(created_at=timezone.now() - timedelta(hours=1))
    operations_reconcile_due()  # a background job: writes in English

    english, german = _audit_pages(campaign_admin)

    assert f"#{purchase.pk} never finished: needs review" in english
    assert f"#{purchase.pk} nie abgeschlossen: Prüfung nötig" in german


def test_redeem_summaries_follow_the_readers_language(campaign_admin, lina_campaign, cashier, fake_provider):
    import uuid

    from vouchers.services.tokens import token_check, token_redeem

    fake_provider.add_token("ABCD1234EFGH5678", "50.00")
    card = token_check(campaign=lina_campaign, user=cashier, code="ABCD1234EFGH5678")
    token_redeem(
        campaign=lina_campaign,
        user=cashier,
        code=card.code,
        amount=Decimal("12.50"),
        request_token=uuid.uuid4().hex,
        check_operation_id=card.operation.pk,
    )

    english, german = _audit_pages(campaign_admin)

    assert "Redeem of 12.50 € on" in english
    assert "Einlösung von 12,50 € auf" in german
    assert AuditEvent.objects.get(action="token.redeemed").summary.startswith("Redeem of 12.50 € on")
