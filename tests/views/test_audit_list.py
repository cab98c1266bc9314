"""The audit list: scoped, filterable, exportable without formula injection."""

from __future__ import annotations

import pytest
from django.urls import reverse

from vouchers.services.audit import audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(campaign_admin, lina_campaign, other_campaign):
    audit_record(
        actor=campaign_admin, action="campaign.changed", summary="Shop renamed", campaign=lina_campaign
    )
    audit_record(actor=None, action="membership.added", summary="=cmd|' /C calc'!A0", campaign=lina_campaign)
    audit_record(
        actor=None, action="campaign.changed", summary="Secret other change", campaign=other_campaign
    )


def test_admin_sees_own_campaign_events_only(client, campaign_admin, events):
    client.force_login(campaign_admin)
    body = client.get(reverse("vouchers:audit-list")).content.decode()
    assert "Shop renamed" in body
    assert "Secret other change" not in body


def test_filter_by_action(client, campaign_admin, events):
    client.force_login(campaign_admin)
    body = client.get(reverse("vouchers:audit-list"), {"action": "membership"}).content.decode()
    assert "Shop renamed" not in body


def test_bad_filter_input_is_a_message_not_an_error(client, campaign_admin, events):
    client.force_login(campaign_admin)
    response = client.get(reverse("vouchers:audit-list"), {"since": "not-a-date", "campaign": "x" * 500})
    assert response.status_code == 200


def test_csv_export_escapes_formulas(client, campaign_admin, events):
    client.force_login(campaign_admin)
    response = client.get(reverse("vouchers:audit-list"), {"export": "csv"})
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "'=cmd|" in body
    assert "Secret other change" not in body


def test_cashier_cannot_see_the_audit(client, cashier):
    client.force_login(cashier)
    assert client.get(reverse("vouchers:audit-list")).status_code == 403


@pytest.mark.parametrize("per_page", ["-5", "0", "9" * 400, "abc"])
def test_any_page_size_in_the_address_is_a_page_not_an_error(client, campaign_admin, events, per_page):
    """django-tables2 reads ?per_page=; a negative or enormous one was a server error."""
    client.force_login(campaign_admin)
    for url in (reverse("vouchers:audit-list"), reverse("vouchers:sale-list")):
        response = client.get(url, {"per_page": per_page})
        assert response.status_code == 200
