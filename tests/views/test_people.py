"""People (issue 19, item 6): campaign admins add cashiers and marketing managers to their own
campaigns, give them a new password and deactivate them: scoped, audited, sessions ended."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from tests.support.factories import PASSWORD, make_user
from vouchers.access import roles
from vouchers.models import AuditEvent, Membership
from vouchers.services.people import PersonRefused, person_active_set, person_password_set

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _language_restored():
    """A German request leaves German active in this thread (LocaleMiddleware never resets it);
    restore the language after each test so later tests read English."""
    with translation.override(translation.get_language()):
        yield


User = get_user_model()
LIST = reverse("vouchers:people-list")
CREATE = reverse("vouchers:person-create")
NEW_PASSWORD = "Till-Nr7-Frühling!"


def detail(person) -> str:
    return reverse("vouchers:person-detail", args=[person.pk])


def sign_in(client, username: str, password: str) -> bool:
    """Through the sign-in page (django-axes needs the request)."""
    response = client.post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302


def create_data(chosen, **overrides) -> dict:
    data = {
        "username": "newtill",
        "first_name": "Nina",
        "last_name": "Till",
        "email": "nina@shop.example",
        "role": roles.CASHIER,
        "campaigns": [c.pk for c in chosen],
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }
    data.update(overrides)
    return data


def test_admin_adds_a_cashier_to_their_campaign_who_can_then_sign_in(client, campaign_admin, lina_campaign):
    client.force_login(campaign_admin)
    response = client.post(CREATE, create_data([lina_campaign]))
    person = User.objects.get(username="newtill")
    assert response.status_code == 302 and response["Location"] == detail(person)
    assert list(person.groups.values_list("name", flat=True)) == [roles.CASHIER]
    assert not person.is_staff and person.is_active
    assert list(Membership.objects.filter(user=person).values_list("campaign", flat=True)) == [
        lina_campaign.pk
    ]
    event = AuditEvent.objects.get(action="user.created")
    assert event.campaign == lina_campaign and event.actor == campaign_admin
    assert event.data == {
        "user": "newtill",
        "role": roles.CASHIER,
        "campaigns": ["lina-shop"],
        "active": True,
    }
    assert NEW_PASSWORD not in str(event.data) + event.summary
    # The new cashier sees their campaign's desk.
    client.logout()
    assert sign_in(client, "newtill", NEW_PASSWORD)
    assert client.get(reverse("vouchers:desk-check", args=["lina-shop"])).status_code == 200
    # ...and the admin sees the event in their audit trail.
    client.force_login(campaign_admin)
    assert "User newtill created" in client.get(reverse("vouchers:audit-list")).content.decode()


def test_a_marketing_manager_for_two_campaigns(client, campaign_admin, lina_campaign, allsafe_campaign):
    client.force_login(campaign_admin)
    data = create_data([lina_campaign, allsafe_campaign], username="mm2", role=roles.MARKETING_MANAGER)
    assert client.post(CREATE, data).status_code == 302
    person = User.objects.get(username="mm2")
    assert person.has_perm("vouchers.sell_vouchers") and not person.has_perm("vouchers.manage_people")
    assert Membership.objects.filter(user=person).count() == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"role": roles.CAMPAIGN_ADMIN}, "role"),  # never more than cashier or marketing manager
        ({"campaigns": []}, "campaigns"),
        ({"password2": "something-else-1"}, "password2"),
        ({"password1": "123", "password2": "123"}, "password1"),
        ({"username": "cashier"}, "username"),  # taken (case does not matter either)
        ({"username": "CASHIER"}, "username"),
        ({"username": "no spaces please"}, "username"),
    ],
)
def test_refused_input_is_said_and_creates_nobody(
    client, campaign_admin, cashier, lina_campaign, overrides, field
):
    client.force_login(campaign_admin)
    before = User.objects.count()
    response = client.post(CREATE, create_data([lina_campaign], **overrides))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert User.objects.count() == before and not AuditEvent.objects.filter(action="user.created").exists()


def test_another_campaign_cannot_be_chosen(client, campaign_admin, other_campaign):
    client.force_login(campaign_admin)
    page = client.get(CREATE).content.decode()
    assert other_campaign.name not in page
    response = client.post(CREATE, create_data([other_campaign]))
    assert "campaigns" in response.context["form"].errors
    assert not User.objects.filter(username="newtill").exists()


def test_the_list_shows_own_campaigns_people_only(
    client, campaign_admin, cashier, outsider, lina_campaign, other_campaign
):
    elsewhere = make_user(roles.CASHIER, other_campaign, username="othertill")
    shared = make_user(roles.CASHIER, lina_campaign, other_campaign, username="sharedtill")
    client.force_login(campaign_admin)
    body = client.get(LIST).content.decode()
    assert 'data-person="cashier"' in body and 'data-person="sharedtill"' in body
    assert "othertill" not in body and "outsider" not in body
    assert other_campaign.name not in body  # the shared cashier's other campaign is not named
    assert client.get(detail(elsewhere)).status_code == 404
    shared_page = client.get(detail(shared)).content.decode()
    assert "data-password-form" not in shared_page and "a superuser changes" in shared_page


def test_the_list_needs_a_constant_number_of_queries(client, campaign_admin, lina_campaign):
    client.force_login(campaign_admin)
    make_user(roles.CASHIER, lina_campaign, username="first")
    with CaptureQueriesContext(connection) as few:
        client.get(LIST)
    for n in range(8):
        make_user(roles.MARKETING_MANAGER, lina_campaign, username=f"more{n}")
    with CaptureQueriesContext(connection) as many:
        client.get(LIST)
    assert len(many) == len(few)


def test_new_password_signs_the_person_out_and_is_audited(client, campaign_admin, cashier, lina_campaign):
    till = client.__class__()
    assert sign_in(till, "cashier", PASSWORD)
    client.force_login(campaign_admin)
    response = client.post(
        detail(cashier), {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}, follow=True
    )
    assert [m.level_tag for m in response.context["messages"]] == ["success"]
    cashier.refresh_from_db()
    assert cashier.check_password(NEW_PASSWORD)
    assert till.get(reverse("vouchers:home")).status_code == 302  # signed out
    event = AuditEvent.objects.get(action="user.password_changed")
    assert event.campaign == lina_campaign and NEW_PASSWORD not in str(event.data) + event.summary
    assert AuditEvent.objects.filter(action="user.sessions_ended").exists()


def test_a_refused_password_is_an_error_not_a_success(client, campaign_admin, cashier):
    client.force_login(campaign_admin)
    response = client.post(detail(cashier), {"password1": "short", "password2": "short"})
    assert response.status_code == 200 and response.context["form"].errors
    assert list(response.context["messages"]) == []
    assert not AuditEvent.objects.filter(action="user.password_changed").exists()


def test_deactivate_and_reactivate(client, campaign_admin, cashier):
    till = client.__class__()
    assert sign_in(till, "cashier", PASSWORD)
    client.force_login(campaign_admin)
    url = reverse("vouchers:person-active", args=[cashier.pk])
    response = client.post(url, {"active": "0"}, follow=True)
    assert "is deactivated" in " ".join(str(m) for m in response.context["messages"])
    cashier.refresh_from_db()
    assert not cashier.is_active
    assert till.get(reverse("vouchers:home")).status_code == 302
    assert not sign_in(till, "cashier", PASSWORD)
    assert AuditEvent.objects.filter(action="user.deactivated", actor=campaign_admin).count() == 1
    client.post(url, {"active": "0"})  # again: nothing more happens
    assert AuditEvent.objects.filter(action="user.deactivated").count() == 1
    client.post(url, {"active": "1"})
    cashier.refresh_from_db()
    assert cashier.is_active and AuditEvent.objects.filter(action="user.activated").count() == 1


def test_admins_and_shared_people_cannot_be_changed_even_by_a_forged_post(
    client, campaign_admin, lina_campaign, other_campaign
):
    co_admin = make_user(roles.CAMPAIGN_ADMIN, lina_campaign, username="coadmin")
    shared = make_user(roles.CASHIER, lina_campaign, other_campaign, username="sharedtill")
    client.force_login(campaign_admin)
    for person in (co_admin, shared):
        client.post(detail(person), {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
        client.post(reverse("vouchers:person-active", args=[person.pk]), {"active": "0"})
        person.refresh_from_db()
        assert person.is_active and not person.check_password(NEW_PASSWORD)
        with pytest.raises(PersonRefused):
            person_password_set(actor=campaign_admin, person_id=person.pk, password=NEW_PASSWORD)
        with pytest.raises(PersonRefused):
            person_active_set(actor=campaign_admin, person_id=person.pk, active=False)
    assert not AuditEvent.objects.filter(action__in=["user.password_changed", "user.deactivated"]).exists()


def test_cashier_and_marketing_have_no_people_page(client, cashier, marketing):
    for user in (cashier, marketing):
        client.force_login(user)
        assert client.get(LIST).status_code == 403
        assert client.post(CREATE, {}).status_code == 403
        assert LIST not in client.get(reverse("vouchers:home")).content.decode()


def test_people_pages_in_german(client, campaign_admin, cashier):
    client.force_login(campaign_admin)
    client.cookies["django_language"] = "de"
    body = client.get(LIST, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "<h1>Personen</h1>" in body and "Kassenkraft" in body and "Person hinzufügen" in body
    page = client.get(detail(cashier), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Neues Passwort" in page and "Deaktivieren" in page


def test_locked_out_page_says_who_can_give_a_new_password(client):
    from django.template.loader import render_to_string

    with translation.override("en"):
        body = render_to_string("registration/locked_out.html", {"cooloff_timedelta": 900})
    assert "a campaign admin of your campaign can give you a new one on their People page" in body
