"""Roles, login, navigation and campaign scoping on the foundation's pages."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from vouchers.access import roles
from vouchers.access.scoping import campaigns_for

from ..support.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_role_groups_are_created_by_migration_with_their_permissions():
    for role, perms in roles.ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role)
        held = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        }
        assert held == set(perms), role


def test_anonymous_users_are_sent_to_login(client, lina_campaign):
    for url in (
        reverse("vouchers:home"),
        reverse("vouchers:campaign-detail", kwargs={"campaign": "lina-shop"}),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_login_page_and_login(client, cashier):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "cashier", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("vouchers:home")).status_code == 200


def test_wrong_password_gets_a_message_not_an_error(client, cashier):
    response = client.post(reverse("login"), {"username": "cashier", "password": "nope"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content


def test_cashier_gets_403_on_the_admin(client, cashier):
    client.force_login(cashier)
    assert client.get(reverse("admin:index")).status_code == 403
    assert client.get(reverse("admin:vouchers_campaign_changelist")).status_code == 403


def test_member_sees_own_campaign_but_404_for_another(client, cashier, other_campaign):
    client.force_login(cashier)
    assert (
        client.get(reverse("vouchers:campaign-detail", kwargs={"campaign": "lina-shop"})).status_code == 200
    )
    assert (
        client.get(reverse("vouchers:campaign-detail", kwargs={"campaign": "other-shop"})).status_code == 404
    )


def test_home_lists_only_own_campaigns(client, cashier, other_campaign):
    client.force_login(cashier)
    body = client.get(reverse("vouchers:home")).content.decode()
    assert "LINA shop" in body
    assert "Other shop" not in body


def test_scoping_helper(cashier, superuser, lina_campaign, allsafe_campaign, other_campaign):
    assert list(campaigns_for(cashier)) == [lina_campaign]
    assert set(campaigns_for(superuser)) == {lina_campaign, allsafe_campaign, other_campaign}
    assert list(campaigns_for(cashier, provider="allsafe")) == []


def test_navigation_follows_the_role(client, cashier, campaign_admin):
    client.force_login(cashier)
    assert "Administration" not in client.get(reverse("vouchers:home")).content.decode()
    client.force_login(campaign_admin)
    assert "Administration" in client.get(reverse("vouchers:home")).content.decode()


def test_campaign_admin_sees_only_own_campaigns_in_admin(client, campaign_admin, other_campaign):
    client.force_login(campaign_admin)
    response = client.get(reverse("admin:vouchers_campaign_changelist"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "LINA shop" in body
    assert "Other shop" not in body
    assert client.get(reverse("admin:vouchers_campaign_change", args=[other_campaign.pk])).status_code in (
        302,
        404,
    )


def test_language_switch_to_german(client, cashier):
    client.force_login(cashier)
    response = client.post(reverse("set_language"), {"language": "de", "next": "/"})
    assert response.status_code == 302
    assert client.get(reverse("vouchers:home"), HTTP_ACCEPT_LANGUAGE="de").status_code == 200


def test_health_endpoints_need_no_login(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.json()["checks"]["database"] == "ok"
