"""Factories and fixtures: campaigns and one user per role (members of the LINA and Allsafe campaigns)."""

from __future__ import annotations

import factory
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from vouchers.access import roles
from vouchers.models import Campaign, Membership

PASSWORD = "correct-horse-battery-staple"


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Campaign {n}")
    slug = factory.Sequence(lambda n: f"campaign-{n}")
    provider = "lina"
    base_url = "https://lina.example.test/extern/tokenapi"
    api_username = "api-user"
    is_live = True

    @factory.post_generation
    def credentials(self, create, extracted, **kwargs):
        self.api_password = kwargs.get("password", "api-password-secret")
        self.api_shared_key = kwargs.get("shared_key", "shared-key-secret")
        if create:
            self.save()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or PASSWORD)
        if create:
            self.save()


def role_group(role: str) -> Group:
    """The role's group. Transactional tests (live_server, real workers) flush the database,
    which removes the rows the data migration made; recreate them the same way."""
    group, created = Group.objects.get_or_create(name=role)
    if created:
        for perm in roles.ROLE_PERMISSIONS[role]:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
    return group


def make_user(role: str | None, *campaigns: Campaign, **kwargs):
    """A user with ``role`` (None: no role) who is a member of ``campaigns``."""
    user = UserFactory(is_staff=role in roles.STAFF_ROLES, **kwargs)
    if role:
        user.groups.add(role_group(role))
    for campaign in campaigns:
        Membership.objects.create(user=user, campaign=campaign)
    return user


@pytest.fixture
def lina_campaign(db):
    return CampaignFactory(name="LINA shop", slug="lina-shop", provider="lina")


@pytest.fixture
def allsafe_campaign(db):
    return CampaignFactory(
        name="Allsafe vault",
        slug="allsafe-vault",
        provider="allsafe",
        base_url="https://allsafe.example.test",
    )


@pytest.fixture
def other_campaign(db):
    """A campaign none of the role fixtures below is a member of."""
    return CampaignFactory(name="Other shop", slug="other-shop", provider="lina")


@pytest.fixture
def cashier(lina_campaign):
    return make_user(roles.CASHIER, lina_campaign, username="cashier")


@pytest.fixture
def marketing(lina_campaign, allsafe_campaign):
    return make_user(roles.MARKETING_MANAGER, lina_campaign, allsafe_campaign, username="marketing")


@pytest.fixture
def campaign_admin(lina_campaign, allsafe_campaign):
    return make_user(roles.CAMPAIGN_ADMIN, lina_campaign, allsafe_campaign, username="campaignadmin")


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def outsider(other_campaign):
    """A campaign admin of a *different* campaign."""
    return make_user(roles.CAMPAIGN_ADMIN, other_campaign, username="outsider")
