"""Campaign admins see only their own people and campaigns in the admin (issue 15, item 4).

The user admin (list, count, every page by URL, autocomplete) is limited to members of the
admin's campaigns; list filters offer only the admin's campaigns on every admin page; nobody but
a superuser changes rights, and nobody may change a person holding more rights than they do.
"""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.contrib.admin.filters import RelatedFieldListFilter
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from vouchers.access import roles
from vouchers.admin.accounts import CampaignListFilter, UserListFilter
from vouchers.models import AuditEvent, Campaign, Membership, ProviderOperation
from vouchers.services.audit import audit_record

from ..services.test_audit_trail import user_change_data
from ..support.factories import CampaignFactory, make_user, role_group

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def people(lina_campaign, other_campaign):
    """A colleague on the admin's campaign, a stranger on another, and one on no campaign."""
    return {
        "colleague": make_user(roles.CASHIER, lina_campaign, username="colleague", email="col@shop.example"),
        "stranger": make_user(
            roles.CASHIER, other_campaign, username="stranger", email="secret@other.example"
        ),
        "loner": make_user(None, username="loner", email="loner@nowhere.example"),
    }


def test_campaign_admin_lists_and_counts_only_people_of_their_campaigns(client, campaign_admin, people):
    client.force_login(campaign_admin)
    response = client.get(reverse("admin:auth_user_changelist"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "colleague" in body and "col@shop.example" in body
    for hidden in ("stranger", "secret@other.example", "loner"):
        assert hidden not in body
    shown = {user.username for user in response.context["cl"].result_list}
    assert shown == {"colleague", "campaignadmin"}
    assert response.context["cl"].result_count == 2
    assert response.context["cl"].full_result_count == 2
    # Searching does not reach outside either.
    response = client.get(reverse("admin:auth_user_changelist"), {"q": "stranger"})
    assert response.context["cl"].result_count == 0


def test_superuser_sees_everyone(client, superuser, campaign_admin, people):
    client.force_login(superuser)
    response = client.get(reverse("admin:auth_user_changelist"))
    shown = {user.username for user in response.context["cl"].result_list}
    assert {"colleague", "stranger", "loner", "campaignadmin", "root"} <= shown


@pytest.mark.parametrize("view", ["change", "history", "delete", "password_change"])
def test_pages_of_people_outside_are_a_404_like_nobody(client, campaign_admin, people, view):
    client.force_login(campaign_admin)
    stranger = people["stranger"]
    response = client.get(reverse(f"admin:auth_user_{view}", args=[stranger.pk]))
    missing = client.get(reverse(f"admin:auth_user_{view}", args=[999999]))
    assert response.status_code == missing.status_code == 404
    assert "stranger" not in response.content.decode()
    assert "secret@other.example" not in response.content.decode()
    # A POST changes nothing either.
    before = User.objects.get(pk=stranger.pk)
    response = client.post(
        reverse(f"admin:auth_user_{view}", args=[stranger.pk]),
        {**user_change_data(stranger, email="pwned@example.com"), "post": "yes"},
    )
    assert response.status_code == 404
    after = User.objects.get(pk=stranger.pk)
    assert (after.email, after.password, after.is_active) == (before.email, before.password, before.is_active)


def test_a_colleague_can_be_viewed_but_not_changed_by_a_campaign_admin(client, campaign_admin, people):
    client.force_login(campaign_admin)
    colleague = people["colleague"]
    url = reverse("admin:auth_user_change", args=[colleague.pk])
    assert client.get(url).status_code == 200  # view permission: read-only page
    response = client.post(url, user_change_data(colleague, is_superuser="on", is_staff="on"))
    assert response.status_code == 403
    colleague.refresh_from_db()
    assert not colleague.is_superuser and not colleague.is_staff
    assert not AuditEvent.objects.filter(action__startswith="user.").exists()


@pytest.fixture
def powerful_admin(campaign_admin):
    """A campaign admin who was also given change_user directly (a mistake the admin must survive)."""
    campaign_admin.user_permissions.add(Permission.objects.get(codename="change_user"))
    return User.objects.get(pk=campaign_admin.pk)


def test_change_user_right_does_not_let_a_campaign_admin_grant_rights(client, powerful_admin, lina_campaign):
    colleague = make_user(None, lina_campaign, username="newbie")
    client.force_login(powerful_admin)
    url = reverse("admin:auth_user_change", args=[colleague.pk])
    page = client.get(url)
    assert page.status_code == 200
    for name in ("is_superuser", "is_staff", "groups", "user_permissions"):
        assert name not in page.context["adminform"].form.fields, name
    admin_group = role_group(roles.CAMPAIGN_ADMIN)
    perm = Permission.objects.get(codename="delete_campaign")
    data = user_change_data(
        colleague,
        email="new@shop.example",
        is_superuser="on",
        is_staff="on",
        groups=[admin_group.pk],
        user_permissions=[perm.pk],
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:1000]
    colleague = User.objects.get(pk=colleague.pk)
    assert colleague.email == "new@shop.example"  # the plain field changed
    assert not colleague.is_superuser and not colleague.is_staff
    assert not colleague.groups.exists()
    assert not colleague.user_permissions.exists()
    # Their own rights neither.
    own = reverse("admin:auth_user_change", args=[powerful_admin.pk])
    client.post(own, user_change_data(powerful_admin, is_superuser="on"))
    assert not User.objects.get(pk=powerful_admin.pk).is_superuser


def test_nobody_changes_a_person_with_more_rights_than_they_have(
    client, powerful_admin, lina_campaign, superuser, people
):
    """Taking over an account is getting its rights: a superuser, a campaign admin with one more
    permission, even a cashier (the desk's right to redeem is not a campaign admin's)."""
    Membership.objects.create(user=superuser, campaign=lina_campaign)
    richer = make_user(roles.CAMPAIGN_ADMIN, lina_campaign, username="richer")
    richer.user_permissions.add(Permission.objects.get(codename="delete_campaign"))
    client.force_login(powerful_admin)
    for target in (superuser, richer, people["colleague"]):
        old_password = User.objects.get(pk=target.pk).password
        url = reverse("admin:auth_user_change", args=[target.pk])
        assert client.post(url, user_change_data(target, email="x@example.com")).status_code == 403
        password_url = reverse("admin:auth_user_password_change", args=[target.pk])
        new = {"password1": "Taken-over-123!", "password2": "Taken-over-123!", "usable_password": "true"}
        assert client.post(password_url, new).status_code == 403
        after = User.objects.get(pk=target.pk)
        assert after.email != "x@example.com" and after.password == old_password


def test_an_inactive_account_with_more_rights_cannot_be_reactivated(client, powerful_admin, lina_campaign):
    dormant = make_user(roles.CAMPAIGN_ADMIN, lina_campaign, username="dormant", is_active=False)
    dormant.user_permissions.add(Permission.objects.get(codename="delete_campaign"))
    client.force_login(powerful_admin)
    url = reverse("admin:auth_user_change", args=[dormant.pk])
    assert client.post(url, user_change_data(dormant, is_active="on")).status_code == 403
    assert not User.objects.get(pk=dormant.pk).is_active


def test_campaign_admins_cannot_shape_groups(client, powerful_admin):
    powerful_admin.user_permissions.add(Permission.objects.get(codename="change_group"))
    client.force_login(User.objects.get(pk=powerful_admin.pk))
    group = role_group(roles.CASHIER)
    every = list(Permission.objects.values_list("pk", flat=True))
    response = client.post(
        reverse("admin:auth_group_change", args=[group.pk]), {"name": group.name, "permissions": every}
    )
    assert response.status_code == 403
    assert set(group.permissions.values_list("pk", flat=True)) != set(every)


def _autocomplete(client, term):
    response = client.get(
        reverse("admin:autocomplete"),
        {"term": term, "app_label": "vouchers", "model_name": "membership", "field_name": "user"},
    )
    assert response.status_code == 200
    return {row["text"] for row in json.loads(response.content)["results"]}


def test_member_autocomplete_suggests_only_own_people_and_finds_an_exact_user_name(
    client, campaign_admin, people
):
    client.force_login(campaign_admin)
    assert _autocomplete(client, "o") == {"colleague", "campaignadmin"}  # not stranger, not loner
    assert _autocomplete(client, "strang") == set()
    # Someone on none of the admin's campaigns is found by their exact user name only, to add.
    assert _autocomplete(client, "Loner") == {"loner"}
    assert _autocomplete(client, "stranger") == {"stranger"}


# --- List filters ---------------------------------------------------------------------------


def _may_read_records(user):
    """The ledger and audit admin pages are not a role's; a staff member may be given them."""
    for codename in ("view_provideroperation", "view_auditevent"):
        user.user_permissions.add(Permission.objects.get(codename=codename))


def _filter_choices(response, title) -> list[str]:
    for spec in response.context["cl"].filter_specs:
        if str(spec.title) == title:
            return [str(label) for _pk, label in spec.lookup_choices]
    raise AssertionError(f"no filter {title!r}")


@pytest.mark.parametrize(
    "changelist",
    [
        "vouchers_membership_changelist",
        "vouchers_provideroperation_changelist",
        "vouchers_saletemplate_changelist",
    ],
)
def test_by_campaign_filters_offer_only_own_campaigns(client, campaign_admin, other_campaign, changelist):
    CampaignFactory(name="Secret rival shop", slug="rival")
    _may_read_records(campaign_admin)
    client.force_login(campaign_admin)
    response = client.get(reverse(f"admin:{changelist}"))
    assert response.status_code == 200
    choices = _filter_choices(response, "campaign")
    own = sorted(Campaign.objects.filter(memberships__user=campaign_admin).values_list("name", flat=True))
    assert sorted(choices) == own
    body = response.content.decode()
    assert "Secret rival shop" not in body and other_campaign.name not in body


def test_superuser_filter_offers_every_campaign(client, superuser, lina_campaign, other_campaign):
    client.force_login(superuser)
    response = client.get(reverse("admin:vouchers_membership_changelist"))
    assert {"LINA shop", "Other shop"} <= set(_filter_choices(response, "campaign"))


def test_filtering_by_another_campaign_by_url_shows_nothing(client, campaign_admin, other_campaign, people):
    ProviderOperation.objects.create(campaign=other_campaign, kind="check", state="succeeded")
    audit_record(
        actor=people["stranger"], action="test.secret", campaign=other_campaign, summary="rival news"
    )
    _may_read_records(campaign_admin)
    client.force_login(campaign_admin)
    response = client.get(
        reverse("admin:vouchers_provideroperation_changelist"), {"campaign__id__exact": other_campaign.pk}
    )
    assert response.status_code == 200
    assert response.context["cl"].result_count == 0
    response = client.get(reverse("admin:vouchers_auditevent_changelist"))
    assert response.status_code == 200
    assert "rival news" not in response.content.decode()


def test_every_related_list_filter_on_campaigns_or_people_is_scoped():
    """Guard for admin pages added later: a plain related filter would list every campaign."""
    for model, model_admin in admin.site._registry.items():
        for entry in model_admin.list_filter:
            name, spec = entry if isinstance(entry, tuple) else (entry, None)
            if not isinstance(name, str):
                continue
            field = model._meta.get_field(name.split("__")[0])
            target = getattr(field, "related_model", None)
            if target is Campaign:
                assert spec is not None and issubclass(spec, CampaignListFilter), (model, name)
            elif target is User:
                assert spec is not None and issubclass(spec, UserListFilter), (model, name)
            if target in (Campaign, User):
                assert issubclass(spec, RelatedFieldListFilter)  # the scoped ones are such filters


def test_user_list_filter_offers_only_visible_people(rf, campaign_admin, people):
    request = rf.get("/")
    request.user = campaign_admin
    field = ProviderOperation._meta.get_field("user")
    model_admin = admin.site._registry[ProviderOperation]
    spec = UserListFilter(field, request, {}, ProviderOperation, model_admin, field_path="user")
    assert {label for _pk, label in spec.lookup_choices} == {"colleague", "campaignadmin"}
