"""The people a campaign admin manages: the cashiers and marketing managers of their campaigns.

A person is *manageable* by an admin when they hold only the cashier and/or marketing manager
role (no other right: not staff, no direct permissions) and every campaign they work on is one
of the admin's. Someone who also works on a campaign the admin does not manage is listed (they
work on the admin's campaign) but left alone: their password and access there are not this
admin's to change. The other campaign is never named; only the admin's own campaigns are shown.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from ..access import roles
from ..access.scoping import campaigns_for
from ..models import Membership

#: The roles a campaign admin gives and manages.
MANAGED_ROLES = (roles.CASHIER, roles.MARKETING_MANAGER)


def people_for(user) -> QuerySet:
    """People with a role of MANAGED_ROLES or none, working on ``user``'s campaigns (not ``user``).

    Each carries ``own_memberships`` (only ``user``'s campaigns), ``role_names`` via prefetched
    groups, and ``manageable``. A constant number of queries however many people.
    """
    User = get_user_model()
    campaigns = campaigns_for(user)
    if not getattr(user, "is_authenticated", False):
        return User._default_manager.none()
    own = Membership.objects.filter(campaign__in=campaigns.values("pk"))
    elsewhere = Membership.objects.filter(user=OuterRef("pk")).exclude(campaign__in=campaigns.values("pk"))
    other_roles = User.groups.through.objects.filter(user=OuterRef("pk")).exclude(
        group__name__in=MANAGED_ROLES
    )
    direct = User.user_permissions.through.objects.filter(user=OuterRef("pk"))
    return (
        User._default_manager.filter(pk__in=own.values("user_id"), is_superuser=False)
        .exclude(pk=user.pk)
        .annotate(
            works_elsewhere=Exists(elsewhere),
            has_other_rights=Exists(other_roles) | Exists(direct) | Q(is_staff=True),
        )
        .prefetch_related(
            Prefetch(
                "memberships",
                queryset=own.select_related("campaign").order_by("campaign__name"),
                to_attr="own_memberships",
            ),
            "groups",
        )
        .order_by("username")
    )


def manageable_people_for(user) -> QuerySet:
    """The people ``user`` may change: see the module docstring."""
    return people_for(user).filter(works_elsewhere=False, has_other_rights=False)


def person_is_manageable(person) -> bool:
    """For a row of :func:`people_for`."""
    return not (person.works_elsewhere or person.has_other_rights)
