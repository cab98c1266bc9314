"""The audit trail is complete: every admin action and state change leaves an event, no secret
value is in one, and history cannot be deleted (not by the ORM, not through the admin)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import ProtectedError
from django.urls import reverse

from tests.admin.test_credentials import campaign_form_data
from tests.support.factories import PASSWORD, CampaignFactory, UserFactory, make_user, role_group
from tests.support.sales import csv_file, lina_template  # noqa: F401  (fixture)
from vouchers.access import roles
from vouchers.models import AuditEvent, BulkSale, Campaign, Membership, ProviderOperation, SaleTemplate
from vouchers.services.audit import audit_record

pytestmark = pytest.mark.django_db
User = get_user_model()


def events(action: str):
    return AuditEvent.objects.filter(action=action)


def all_audit_text() -> str:
    return json.dumps(list(AuditEvent.objects.values("summary", "data")), default=str)


def user_change_data(user, **overrides) -> dict:
    """What the admin's user change form posts, for ``user`` as stored, with ``overrides``."""
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    for flag in ("is_active", "is_staff", "is_superuser"):
        if getattr(user, flag):
            data[flag] = "on"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- Campaigns, credentials, memberships --------------------------------------------------------


def test_campaign_create_change_and_credentials_are_audited_without_values(client, superuser):
    client.force_login(superuser)
    template = CampaignFactory.build(slug="new-shop", name="New shop")
    data = campaign_form_data(template, new_password="pw-new-123456", new_shared_key="key-new-654321")
    assert client.post(reverse("admin:vouchers_campaign_add"), data).status_code == 302
    campaign = Campaign.objects.get(slug="new-shop")
    assert events("campaign.created").filter(campaign=campaign).exists()
    assert events("campaign.credentials_changed").get().data == {"changed": ["password", "shared key"]}

    url = reverse("admin:vouchers_campaign_change", args=[campaign.pk])
    data = campaign_form_data(campaign, name="Renamed shop", new_password="pw-second-999")
    assert client.post(url, data).status_code == 302
    changed = events("campaign.changed").get()
    assert changed.data["fields"]["name"] == "Renamed shop"
    assert events("campaign.credentials_changed").count() == 2
    text = all_audit_text()
    for secret in ("pw-new-123456", "key-new-654321", "pw-second-999"):
        assert secret not in text


def test_campaign_without_history_delete_is_audited(client, superuser):
    campaign = CampaignFactory(slug="short-lived", name="Short lived")
    client.force_login(superuser)
    response = client.post(reverse("admin:vouchers_campaign_delete", args=[campaign.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    event = events("campaign.deleted").get()
    assert event.campaign is None and event.data["slug"] == "short-lived"


def test_campaign_with_history_cannot_be_deleted_and_the_admin_says_switch_it_off(
    client, superuser, lina_campaign
):
    audit_record(actor=None, action="test.event", summary="history", campaign=lina_campaign)
    client.force_login(superuser)
    url = reverse("admin:vouchers_campaign_delete", args=[lina_campaign.pk])
    for method in ("get", "post"):
        response = getattr(client, method)(url, {"post": "yes"} if method == "post" else None, follow=True)
        assert response.status_code == 200
        assert "cannot be deleted" in response.content.decode() and "untick" in response.content.decode()
    assert Campaign.objects.filter(pk=lina_campaign.pk).exists()
    changelist = reverse("admin:vouchers_campaign_changelist")
    response = client.post(
        changelist, {"action": "delete_selected", "_selected_action": [lina_campaign.pk]}, follow=True
    )
    assert response.status_code == 200 and "cannot be deleted" in response.content.decode()
    assert Campaign.objects.filter(pk=lina_campaign.pk).exists()


def test_membership_add_and_remove_are_audited(client, campaign_admin, lina_campaign):
    newcomer = UserFactory(username="newcomer")
    client.force_login(campaign_admin)
    client.post(reverse("admin:vouchers_membership_add"), {"user": newcomer.pk, "campaign": lina_campaign.pk})
    membership = Membership.objects.get(user=newcomer)
    client.post(reverse("admin:vouchers_membership_delete", args=[membership.pk]), {"post": "yes"})
    assert not Membership.objects.filter(user=newcomer).exists()
    assert events("membership.added").get().data == {"user": "newcomer"}
    assert events("membership.removed").get().campaign == lina_campaign


def test_sale_template_create_change_delete_are_audited(client, campaign_admin, lina_campaign):
    client.force_login(campaign_admin)
    data = {"campaign": lina_campaign.pk, "name": "Xmas", "template_hash": "h-1", "layouts_text": "1, 2"}
    assert (
        client.post(reverse("admin:vouchers_saletemplate_add"), {**data, "is_active": "on"}).status_code
        == 302
    )
    template = SaleTemplate.objects.get(name="Xmas")
    url = reverse("admin:vouchers_saletemplate_change", args=[template.pk])
    assert client.post(url, {**data, "name": "Xmas 2"}).status_code == 302
    client.post(reverse("admin:vouchers_saletemplate_delete", args=[template.pk]), {"post": "yes"})
    for action in ("sale_template.created", "sale_template.changed", "sale_template.deleted"):
        assert events(action).filter(campaign=lina_campaign).count() == 1, action


def test_thresholds_change_is_audited(client, campaign_admin, allsafe_campaign):
    client.force_login(campaign_admin)
    url = reverse("vouchers:stock-thresholds", kwargs={"campaign": allsafe_campaign.slug})
    data = {
        "default_threshold": "7",
        "overrides-TOTAL_FORMS": "1",
        "overrides-INITIAL_FORMS": "0",
        "overrides-0-vendor": "Takealot",
        "overrides-0-value": "100",
        "overrides-0-threshold": "3",
    }
    assert client.post(url, data).status_code == 302
    event = events("stock.thresholds_changed").get()
    assert event.data["after"] == {"default": 7, "overrides": ["Takealot 100.00: 3"]}


def test_manual_resolution_is_audited_with_its_reason(client, campaign_admin, cashier, lina_campaign):
    operation = ProviderOperation.objects.create(
        campaign=lina_campaign,
        user=cashier,
        kind=ProviderOperation.Kind.REDEEM,
        state=ProviderOperation.State.UNKNOWN,
        code_masked="••••WXYZ",
        code_digest="d" * 64,
        amount="5.00",
    )
    client.force_login(campaign_admin)
    response = client.post(
        reverse("vouchers:operation-resolve", args=[operation.pk]),
        {"state": "succeeded", "reason": "Back office shows the redemption at 10:02"},
    )
    assert response.status_code == 302
    event = events("operation.resolved").get()
    assert event.actor == campaign_admin and "Back office shows the redemption" in json.dumps(event.data)


@pytest.mark.usefixtures("lina_template")
def test_bulk_sale_upload_start_cancel_resume_are_audited(client, marketing, monkeypatch):
    monkeypatch.setattr("vouchers.tasks.sales.bulk_sale_run_task.apply_async", lambda args, **options: None)

    client.force_login(marketing)
    upload = SimpleUploadedFile("b.csv", csv_file("25,Standard,,,,"), content_type="text/csv")
    client.post(reverse("vouchers:bulksale-upload", kwargs={"campaign": "lina-shop"}), {"file": upload})
    bulk = BulkSale.objects.get()
    client.post(reverse("vouchers:bulksale-start", args=[bulk.pk]))
    client.post(reverse("vouchers:bulksale-cancel", args=[bulk.pk]))
    # A stalled run (no lease holder) can be resumed by a person.
    BulkSale.objects.filter(pk=bulk.pk).update(state="running", cancel_requested=False, lease_until=None)
    client.post(reverse("vouchers:bulksale-resume", args=[bulk.pk]))
    for action in ("bulk_sale.uploaded", "bulk_sale.started", "bulk_sale.cancelled", "bulk_sale.resumed"):
        assert events(action).filter(actor=marketing).count() == 1, action


# --- Users and groups in the admin --------------------------------------------------------------


def test_user_create_is_audited_without_the_password(client, superuser):
    client.force_login(superuser)
    response = client.post(
        reverse("admin:auth_user_add"),
        {
            "username": "newcashier",
            "usable_password": "true",
            "password1": "Sup3r-secret-pass!",
            "password2": "Sup3r-secret-pass!",
        },
    )
    assert response.status_code == 302, response.content.decode()[:1500]
    event = events("user.created").get()
    assert event.actor == superuser and event.data["user"] == "newcashier"
    assert "Sup3r-secret-pass!" not in all_audit_text()
    assert User.objects.get(username="newcashier").password not in all_audit_text()


def test_role_change_activation_and_field_changes_are_audited(client, superuser, lina_campaign):
    person = make_user(roles.CASHIER, lina_campaign, username="till3")
    client.force_login(superuser)
    url = reverse("admin:auth_user_change", args=[person.pk])
    marketing_group = role_group(roles.MARKETING_MANAGER)
    data = user_change_data(person, groups=[marketing_group.pk], email="till3@shop.example")
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:1500]
    groups = events("user.groups_changed").get()
    assert groups.data["added"] == [roles.MARKETING_MANAGER] and groups.data["removed"] == [roles.CASHIER]
    assert events("user.changed").get().data["fields"]["email"] == ["till3@example.com", "till3@shop.example"]

    person.refresh_from_db()
    response = client.post(url, user_change_data(person, is_active=None))
    assert response.status_code == 302
    assert events("user.deactivated").filter(object_id=str(person.pk)).count() == 1
    person.refresh_from_db()
    client.post(url, user_change_data(person, is_active="on"))
    assert events("user.activated").count() == 1


def test_direct_permission_change_is_audited(client, superuser):
    person = UserFactory(username="special")
    client.force_login(superuser)
    permission = Permission.objects.get(codename="view_audit")
    data = user_change_data(person, user_permissions=[permission.pk])
    assert client.post(reverse("admin:auth_user_change", args=[person.pk]), data).status_code == 302
    assert events("user.permissions_changed").get().data["added"] == ["vouchers.view_audit"]


def test_password_change_by_admin_records_that_it_changed_never_the_value(client, superuser):
    person = UserFactory(username="forgetful")
    client.force_login(superuser)
    url = reverse("admin:auth_user_password_change", args=[person.pk])
    mismatch = {"password1": "Another-pass-123", "password2": "different", "usable_password": "true"}
    assert client.post(url, mismatch).status_code == 200
    assert not events("user.password_changed").exists()
    good = {"password1": "Another-pass-123", "password2": "Another-pass-123", "usable_password": "true"}
    assert client.post(url, good).status_code == 302
    event = events("user.password_changed").get()
    assert event.actor == superuser and event.object_id == str(person.pk)
    person.refresh_from_db()
    assert "Another-pass-123" not in all_audit_text() and person.password not in all_audit_text()


def test_changing_ones_own_password_on_the_admin_page_is_audited_never_the_value(client, campaign_admin):
    client.force_login(campaign_admin)
    url = reverse("admin:password_change")
    wrong_old = {
        "old_password": "not-it",
        "new_password1": "Shift-pass-9876",
        "new_password2": "Shift-pass-9876",
    }
    assert client.post(url, wrong_old).status_code == 200
    assert not events("user.password_changed").exists()
    good = {**wrong_old, "old_password": PASSWORD}
    assert client.post(url, good).status_code == 302
    event = events("user.password_changed").get()
    assert event.actor == campaign_admin and event.data["self"] is True
    campaign_admin.refresh_from_db()
    assert "Shift-pass-9876" not in all_audit_text() and campaign_admin.password not in all_audit_text()


def test_user_with_history_cannot_be_deleted_the_admin_says_deactivate(client, superuser, cashier):
    audit_record(actor=cashier, action="test.event", summary="did something")
    client.force_login(superuser)
    url = reverse("admin:auth_user_delete", args=[cashier.pk])
    response = client.post(url, {"post": "yes"}, follow=True)
    assert response.status_code == 200
    body = response.content.decode()
    assert "cannot be deleted" in body and "Deactivate the account instead" in body
    assert User.objects.filter(pk=cashier.pk).exists()
    response = client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "delete_selected", "_selected_action": [cashier.pk]},
        follow=True,
    )
    assert response.status_code == 200 and "Deactivate the account instead" in response.content.decode()
    assert User.objects.filter(pk=cashier.pk).exists()


def test_user_without_history_delete_is_audited(client, superuser, lina_campaign):
    person = make_user(roles.CASHIER, lina_campaign, username="temp")
    client.force_login(superuser)
    response = client.post(reverse("admin:auth_user_delete", args=[person.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=person.pk).exists()
    assert events("user.deleted").get().data == {"user": "temp", "campaigns": ["lina-shop"]}


def test_group_create_permission_change_and_delete_are_audited(client, superuser):
    client.force_login(superuser)
    view_audit = Permission.objects.get(codename="view_audit")
    view_stock = Permission.objects.get(codename="view_stock")
    client.post(reverse("admin:auth_group_add"), {"name": "Auditors", "permissions": [view_audit.pk]})
    group = Group.objects.get(name="Auditors")
    change = reverse("admin:auth_group_change", args=[group.pk])
    client.post(change, {"name": "Auditors", "permissions": [view_stock.pk]})
    client.post(change, {"name": "Readers", "permissions": [view_stock.pk]})
    client.post(reverse("admin:auth_group_delete", args=[group.pk]), {"post": "yes"})
    assert events("group.created").get().data["permissions"] == ["vouchers.view_audit"]
    assert events("group.permissions_changed").get().data == {
        "group": "Auditors",
        "added": ["vouchers.view_stock"],
        "removed": ["vouchers.view_audit"],
    }
    assert events("group.renamed").get().data == {"from": "Auditors", "to": "Readers"}
    assert events("group.deleted").count() == 1


# --- History cannot vanish ----------------------------------------------------------------------


def test_deleting_an_actor_or_campaign_with_history_is_refused_by_the_database_layer(cashier, lina_campaign):
    audit_record(actor=cashier, action="test.event", summary="x", campaign=lina_campaign)
    Membership.objects.filter(campaign=lina_campaign).delete()
    with pytest.raises(ProtectedError):
        cashier.delete()
    with pytest.raises(ProtectedError):
        lina_campaign.delete()
    assert AuditEvent.objects.filter(actor=cashier, campaign=lina_campaign).count() == 1
