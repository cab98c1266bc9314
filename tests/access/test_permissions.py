"""Groups and permissions read once per request, in one statement (access/permissions.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from vouchers.access import roles
from vouchers.access.context_processors import navigation
from vouchers.access.navigation import ADMIN_ITEM, NAV_ITEMS
from vouchers.access.permissions import viewer_access

from ..support.factories import make_user

pytestmark = pytest.mark.django_db


def fresh(user):
    """The user as a new request loads it: nothing read yet."""
    return get_user_model().objects.get(pk=user.pk)


@pytest.mark.parametrize("role", [roles.CASHIER, roles.MARKETING_MANAGER, roles.CAMPAIGN_ADMIN])
def test_one_statement_gives_what_model_backend_gives(role, lina_campaign):
    user = make_user(role, lina_campaign)
    own = Permission.objects.get(codename="view_ledger", content_type__app_label="vouchers")
    user.user_permissions.add(own)  # a permission of the person's own, not of a group
    expected_perms = fresh(user).get_all_permissions()  # Django's own two statements
    expected_groups = set(fresh(user).groups.values_list("name", flat=True))

    viewer = fresh(user)
    with CaptureQueriesContext(connection) as queries:
        access = viewer_access(viewer)
        # has_perm reads nothing more for the rest of the request, for any permission.
        for permission in [*expected_perms, "vouchers.no_such_permission"]:
            assert viewer.has_perm(permission) == (permission in expected_perms)
        assert viewer.get_all_permissions() == expected_perms
    assert len(queries) == 1
    assert access.permissions == expected_perms
    assert access.groups == expected_groups
    assert "vouchers.view_ledger" in access.permissions


def test_a_group_without_permissions_still_names_the_role(lina_campaign):
    user = make_user(None, lina_campaign)
    user.groups.add(Group.objects.create(name="Empty"))
    access = viewer_access(fresh(user))
    assert access.groups == {"Empty"}
    assert access.permissions == frozenset()


def test_superusers_hold_everything_and_anonymous_nothing(superuser):
    from django.contrib.auth.models import AnonymousUser

    access = viewer_access(fresh(superuser))
    assert access.has("vouchers.use_desk") and access.has("anything.at_all")
    assert not viewer_access(AnonymousUser()).has("vouchers.use_desk")


@pytest.mark.parametrize("role", [roles.CASHIER, roles.MARKETING_MANAGER, roles.CAMPAIGN_ADMIN, None])
def test_navigation_is_the_same_as_asking_has_perm_for_every_entry(role, lina_campaign, superuser):
    user = fresh(superuser) if role is None else fresh(make_user(role, lina_campaign))
    request = RequestFactory().get("/")
    request.user = user
    with CaptureQueriesContext(connection) as queries:
        context = navigation(request)
        labels = [str(item["label"]) for item in context["nav_items"]]
        user_roles = list(context["user_roles"])
        home = str(context["home_url"])
    assert len(queries) <= 1  # the one access statement (none more for nine entries)

    reference = fresh(user)
    expected = [
        str(item.label)
        for item in [*NAV_ITEMS, ADMIN_ITEM]
        if (not item.staff_only or reference.is_staff)
        and (item.permission is None or reference.has_perm(item.permission))
    ]
    assert labels == expected
    assert home == ("/desk/" if roles.desk_is_home(reference) else "/")
    if role is not None:
        assert user_roles == [str(roles.ROLE_LABELS[role])]
    else:
        assert user_roles[0] == "Superuser"


def test_navigation_reads_nothing_when_the_template_shows_none_of_it(cashier):
    request = RequestFactory().get("/")
    request.user = fresh(cashier)
    with CaptureQueriesContext(connection) as queries:
        navigation(request)  # the desk's card fragment: no navigation, no role names
    assert len(queries) == 0
