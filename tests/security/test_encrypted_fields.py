"""EncryptedTextField: one declaration per encrypted column, decrypted on read, one error on a lost key."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.urls import reverse

from vouchers.models import Campaign, ReconcileTicket, Sale
from vouchers.security import crypto
from vouchers.security.fields import EncryptedTextField
from vouchers.services import sales as svc
from vouchers.services.encryption import encrypted_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def lost_key(settings):
    """Swap in a key nothing was encrypted with (as if the old one was removed too early)."""

    def swap():
        settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
        crypto._multifernet.cache_clear()

    yield swap
    crypto._multifernet.cache_clear()


def test_every_encrypted_column_is_found_by_type():
    found = {(model.__name__, f.name, f.column) for model, fields in encrypted_fields() for f in fields}
    assert found == {
        ("Campaign", "api_password", "api_password_ciphertext"),
        ("Campaign", "api_shared_key", "api_shared_key_ciphertext"),
        ("ReconcileTicket", "code", "code_ciphertext"),
        ("Sale", "full_code", "full_code_ciphertext"),
        ("Sale", "qrcode_png_base64", "qrcode_png_ciphertext"),
        ("Sale", "voucher_fields", "voucher_fields_ciphertext"),
    }
    assert all(isinstance(f, EncryptedTextField) for _model, fields in encrypted_fields() for f in fields)


def test_saved_instance_holds_what_was_stored_and_empty_stays_empty(lina_campaign):
    field = Campaign._meta.get_field("api_password")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_password_ciphertext FROM vouchers_campaign WHERE id = %s", [lina_campaign.pk]
        )
        assert cursor.fetchone()[0] == field.stored(lina_campaign)
    lina_campaign.api_shared_key = ""
    lina_campaign.save()
    fresh = Campaign.objects.get(pk=lina_campaign.pk)
    assert fresh.api_shared_key == "" and not fresh.has_shared_key and fresh.has_password


def test_rows_load_and_save_while_the_key_is_lost_and_reading_is_a_clear_error(lina_campaign, lost_key):
    lost_key()
    campaigns = list(Campaign.objects.all())  # loading never decrypts
    campaign = next(c for c in campaigns if c.pk == lina_campaign.pk)
    assert campaign.has_password
    campaign.name = "Renamed while the key is missing"
    campaign.save()  # saving keeps the stored ciphertext as it is
    with pytest.raises(crypto.CredentialDecryptionError, match="API password of campaign"):
        _ = campaign.api_password


def test_sale_page_shows_the_masked_code_and_says_why_when_the_key_is_lost(
    client, marketing, fake_provider, lina_template, lost_key
):
    sale = svc.gift_token_sell(
        campaign=lina_template.campaign,
        user=marketing,
        request_token=svc.new_request_token(),
        amount=Decimal("25"),
        template=lina_template,
    )
    client.force_login(marketing)
    lost_key()
    page = client.get(reverse("vouchers:sale-detail", args=[sale.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "data-code-unreadable" in body and sale.code_masked in body
    assert Sale._meta.get_field("full_code").stored(Sale.objects.get(pk=sale.pk)) not in body
    assert client.get(reverse("vouchers:sale-qr", args=[sale.pk])).status_code == 404
    assert client.get(reverse("vouchers:sale-list")).status_code == 200


def test_reconcile_ticket_code_is_plain_to_code_and_encrypted_in_the_column(lina_campaign):
    from vouchers.models import ProviderOperation

    operation = ProviderOperation.objects.create(campaign=lina_campaign, kind=ProviderOperation.Kind.REDEEM)
    ReconcileTicket.objects.create(operation=operation, code="ABCD1234EFGH5678")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT code_ciphertext FROM vouchers_reconcileticket WHERE operation_id = %s", [operation.pk]
        )
        assert "ABCD1234EFGH5678" not in cursor.fetchone()[0]
    assert ReconcileTicket.objects.get(operation=operation).code == "ABCD1234EFGH5678"


def test_a_deferred_column_is_loaded_on_access_not_read_as_empty(lina_campaign):
    campaign = Campaign.objects.only("pk", "slug").get(pk=lina_campaign.pk)
    assert campaign.has_password
    assert Campaign.objects.only("pk").get(pk=lina_campaign.pk).api_password == "api-password-secret"
    stored = Campaign.objects.values_list("api_password", flat=True).get(pk=lina_campaign.pk)
    assert stored and "api-password-secret" not in stored  # values() hand back what is stored
