"""The admin's campaign form: credentials are write-only and their changes audited without values."""

from __future__ import annotations

import pytest
from django.urls import reverse

from vouchers.models import AuditEvent, Campaign, Membership

pytestmark = pytest.mark.django_db


def campaign_form_data(campaign: Campaign, **overrides) -> dict:
    data = {
        "name": campaign.name,
        "slug": campaign.slug,
        "provider": campaign.provider,
        "is_live": "on",
        "base_url": campaign.base_url,
        "connect_timeout": "3.05",
        "read_timeout": "15",
        "api_username": campaign.api_username,
        "new_password": "",
        "new_shared_key": "",
        "lina_hash_recipe": campaign.lina_hash_recipe,
        "lina_login_user_field": "user",
        "lina_login_pass_field": "pass",
        "sale_min_amount": "5.00",
        "sale_max_amount": "500.00",
        "allsafe_allocate_path": "/allocate",
        "allsafe_vendor_field": "vendor",
        "allsafe_value_field": "value",
        "allsafe_reference_field": "reference",
        "poll_interval_minutes": "5",
        "low_stock_threshold": "10",
        "stale_after_intervals": "3",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def test_change_form_never_shows_stored_secrets(client, campaign_admin, lina_campaign):
    client.force_login(campaign_admin)
    body = client.get(reverse("admin:vouchers_campaign_change", args=[lina_campaign.pk])).content.decode()
    assert "api-password-secret" not in body
    assert "shared-key-secret" not in body
    assert Campaign._meta.get_field("api_password").stored(lina_campaign) not in body
    assert "password set" in body


def test_blank_secret_keeps_the_stored_one(client, campaign_admin, lina_campaign):
    client.force_login(campaign_admin)
    url = reverse("admin:vouchers_campaign_change", args=[lina_campaign.pk])
    response = client.post(url, campaign_form_data(lina_campaign, name="Renamed shop"))
    assert response.status_code == 302, response.content.decode()[:2000]
    lina_campaign.refresh_from_db()
    assert lina_campaign.name == "Renamed shop"
    assert lina_campaign.api_password == "api-password-secret"
    assert not AuditEvent.objects.filter(action="campaign.credentials_changed").exists()


def test_new_secret_is_stored_encrypted_and_audited_without_value(client, campaign_admin, lina_campaign):
    client.force_login(campaign_admin)
    url = reverse("admin:vouchers_campaign_change", args=[lina_campaign.pk])
    response = client.post(url, campaign_form_data(lina_campaign, new_password="brand-new-pass"))
    assert response.status_code == 302
    lina_campaign.refresh_from_db()
    assert lina_campaign.api_password == "brand-new-pass"
    assert lina_campaign.credentials_changed_by == campaign_admin
    event = AuditEvent.objects.get(action="campaign.credentials_changed")
    assert "brand-new-pass" not in str(event.summary) + str(event.data)
    assert event.data == {"changed": ["password"]}


def test_new_campaign_needs_credentials_and_creator_becomes_member(client, campaign_admin, lina_campaign):
    client.force_login(campaign_admin)
    url = reverse("admin:vouchers_campaign_add")
    draft = Campaign(
        name="New shop", slug="new-shop", provider="lina", base_url="https://lina.example.test/x"
    )
    response = client.post(url, campaign_form_data(draft))
    assert response.status_code == 200
    assert "needs its API password" in response.content.decode()
    response = client.post(url, campaign_form_data(draft, new_password="pw-1", new_shared_key="key-1"))
    assert response.status_code == 302
    created = Campaign.objects.get(slug="new-shop")
    assert Membership.objects.filter(user=campaign_admin, campaign=created).exists()


def test_credentials_are_not_in_list_columns_or_search(client, campaign_admin, lina_campaign):
    from vouchers.admin import CampaignAdmin

    forbidden = {"api_password", "api_shared_key", "api_password_ciphertext", "api_shared_key_ciphertext"}
    forbidden |= {"new_password", "new_shared_key"}
    assert not forbidden & set(CampaignAdmin.list_display)
    assert not forbidden & set(CampaignAdmin.search_fields)


def test_membership_added_in_admin_is_audited(client, campaign_admin, lina_campaign, cashier):
    from ..support.factories import UserFactory

    newcomer = UserFactory(username="newcomer")
    client.force_login(campaign_admin)
    response = client.post(
        reverse("admin:vouchers_membership_add"), {"user": newcomer.pk, "campaign": lina_campaign.pk}
    )
    assert response.status_code == 302
    assert Membership.objects.filter(user=newcomer, campaign=lina_campaign).exists()
    assert AuditEvent.objects.filter(action="membership.added", campaign=lina_campaign).exists()


def test_audit_events_are_append_only(lina_campaign):
    from vouchers.models.audit import AppendOnlyError
    from vouchers.services.audit import audit_record

    event = audit_record(actor=None, action="test.event", summary="x", campaign=lina_campaign)
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().update(summary="changed")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
