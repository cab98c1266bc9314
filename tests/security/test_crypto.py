"""Credentials are encrypted at rest with rotating keys and never come back as ciphertext."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from vouchers.models import AuditEvent, Campaign
from vouchers.security import crypto

from ..support.factories import CampaignFactory


@pytest.fixture
def fresh_keys(settings):
    crypto._multifernet.cache_clear()
    yield settings
    crypto._multifernet.cache_clear()


def raw_columns(campaign: Campaign) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_password_ciphertext, api_shared_key_ciphertext FROM vouchers_campaign WHERE id = %s",
            [campaign.pk],
        )
        return list(cursor.fetchone())


@pytest.mark.django_db
def test_credential_columns_hold_no_plaintext():
    campaign = CampaignFactory(credentials__password="pw-plain-123", credentials__shared_key="key-plain-456")
    stored = raw_columns(campaign)
    assert all(stored)
    assert "pw-plain-123" not in " ".join(stored)
    assert "key-plain-456" not in " ".join(stored)
    fresh = Campaign.objects.get(pk=campaign.pk)
    assert fresh.api_password == "pw-plain-123"
    assert fresh.api_shared_key == "key-plain-456"


@pytest.mark.django_db
def test_rotation_re_encrypts_with_the_newest_key_and_old_key_can_then_go(fresh_keys):
    old_key = fresh_keys.FIELD_ENCRYPTION_KEYS[0]
    campaign = CampaignFactory(credentials__password="rotate-me")
    before = raw_columns(campaign)

    new_key = Fernet.generate_key().decode()
    fresh_keys.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    crypto._multifernet.cache_clear()
    assert Campaign.objects.get(pk=campaign.pk).api_password == "rotate-me"  # any key decrypts
    call_command("rotate_encryption_keys")
    after = raw_columns(campaign)
    assert after != before

    fresh_keys.FIELD_ENCRYPTION_KEYS = [new_key]
    crypto._multifernet.cache_clear()
    assert Campaign.objects.get(pk=campaign.pk).api_password == "rotate-me"
    assert AuditEvent.objects.filter(action="campaign.credentials_reencrypted", campaign=campaign).exists()


@pytest.mark.django_db
def test_wrong_key_raises_a_clear_error_never_ciphertext(fresh_keys):
    campaign = CampaignFactory(credentials__password="secret")
    fresh_keys.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    crypto._multifernet.cache_clear()
    fresh = Campaign.objects.get(pk=campaign.pk)
    with pytest.raises(crypto.CredentialDecryptionError, match="FIELD_ENCRYPTION_KEYS"):
        _ = fresh.api_password
    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("rotate_encryption_keys")


def test_empty_values_stay_empty():
    assert crypto.encrypt("") == ""
    assert crypto.decrypt("") == ""


@pytest.mark.django_db
def test_sale_codes_are_stored_encrypted_and_rotated(fresh_keys, lina_campaign):
    from vouchers.models import ProviderOperation, Sale

    operation = ProviderOperation.objects.create(
        campaign=lina_campaign, kind=ProviderOperation.Kind.PURCHASE, state=ProviderOperation.State.SUCCEEDED
    )
    sale = Sale.objects.create(
        campaign=lina_campaign,
        operation=operation,
        kind=Sale.Kind.GIFT_TOKEN,
        amount="10.00",
        full_code="SECRETCODE123456",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT full_code_ciphertext FROM vouchers_sale WHERE id = %s", [sale.pk])
        stored = cursor.fetchone()[0]
    assert stored and "SECRETCODE123456" not in stored

    old_key = fresh_keys.FIELD_ENCRYPTION_KEYS[0]
    fresh_keys.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_key]
    crypto._multifernet.cache_clear()
    call_command("rotate_encryption_keys")
    fresh_keys.FIELD_ENCRYPTION_KEYS = fresh_keys.FIELD_ENCRYPTION_KEYS[:1]
    crypto._multifernet.cache_clear()
    assert Sale.objects.get(pk=sale.pk).full_code == "SECRETCODE123456"

    fresh_keys.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    crypto._multifernet.cache_clear()
    sale = Sale.objects.get(pk=sale.pk)  # the row still loads; reading the code is a clear error
    with pytest.raises(crypto.CredentialDecryptionError, match="FIELD_ENCRYPTION_KEYS"):
        _ = sale.full_code  # never the ciphertext, never an empty string


@pytest.mark.django_db
def test_voucher_details_and_qr_image_are_stored_encrypted_and_rotated(fresh_keys, allsafe_campaign):
    """An allocated voucher's fields hold its PIN and a QR image encodes the code: both are
    encrypted at rest and rotated with the keys, like the code."""
    from vouchers.models import ProviderOperation, Sale

    operation = ProviderOperation.objects.create(
        campaign=allsafe_campaign,
        kind=ProviderOperation.Kind.ALLOCATE,
        state=ProviderOperation.State.SUCCEEDED,
    )
    fields = {"pin": "PIN-9876543210", "serial": "S-1", "value": 50}
    sale = Sale.objects.create(
        campaign=allsafe_campaign,
        operation=operation,
        kind=Sale.Kind.DIGITAL_VOUCHER,
        amount="50.00",
        full_code="PIN-9876543210",
        voucher_fields=fields,
        qrcode_png_base64="iVBORw0KGgoQRIMAGE",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT voucher_fields_ciphertext, qrcode_png_ciphertext FROM vouchers_sale WHERE id = %s",
            [sale.pk],
        )
        stored_fields, stored_qr = cursor.fetchone()
    assert "PIN-9876543210" not in stored_fields and "QRIMAGE" not in stored_qr

    old_key = fresh_keys.FIELD_ENCRYPTION_KEYS[0]
    fresh_keys.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_key]
    crypto._multifernet.cache_clear()
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "2 sale QR image(s) and voucher detail(s)" in out.getvalue()
    fresh_keys.FIELD_ENCRYPTION_KEYS = fresh_keys.FIELD_ENCRYPTION_KEYS[:1]
    crypto._multifernet.cache_clear()
    sale = Sale.objects.get(pk=sale.pk)
    assert sale.voucher_fields == fields
    assert sale.qrcode_png_base64 == "iVBORw0KGgoQRIMAGE"

    fresh_keys.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    crypto._multifernet.cache_clear()
    sale = Sale.objects.get(pk=sale.pk)  # the row still loads; reading the values is a clear error
    with pytest.raises(crypto.CredentialDecryptionError):
        _ = sale.voucher_fields  # never the ciphertext, never an empty dict
    with pytest.raises(crypto.CredentialDecryptionError):
        _ = sale.qrcode_png_base64
