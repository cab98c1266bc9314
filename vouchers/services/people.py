"""Campaign admins add cashiers and marketing managers to their campaigns and manage them.

Every change checks, inside its transaction, that the actor may make it (a stale form or a
forged POST gets :class:`PersonRefused`, nothing changes), writes its audit event with the
campaign it concerns, and ends the person's sessions when their access changes (a new password,
a deactivation), as the admin's own people pages do (services/accounts.py). Passwords are never
recorded, only that one was set.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from .. import staff_text
from ..access.scoping import campaigns_for
from ..models import Campaign, Membership
from ..selectors.people import MANAGED_ROLES, manageable_people_for
from ..staff_text import stored_sentence
from .accounts import user_sessions_end
from .audit import audit_record

MANAGE_PEOPLE = "vouchers.manage_people"


class PersonRefused(Exception):
    """The actor may not make this change (not their campaign, not a person they manage)."""


def _require(actor) -> None:
    if not (getattr(actor, "is_authenticated", False) and actor.is_active and actor.has_perm(MANAGE_PEOPLE)):
        raise PersonRefused("not allowed to manage people")


def _managed(actor, person_id: int):
    """The person, locked, if ``actor`` manages them; else PersonRefused."""
    _require(actor)
    User = get_user_model()
    if not manageable_people_for(actor).filter(pk=person_id).exists():
        raise PersonRefused("not a person this admin manages")
    return User._default_manager.select_for_update().get(pk=person_id)


def _person_event(actor, person, action: str, summary: str, message: dict) -> None:
    """An event about ``person``, filed under their first campaign of the actor's (whose admins
    see it in the audit), naming all of those campaigns."""
    shared = campaigns_for(actor).filter(memberships__user=person)
    audit_record(
        actor=actor,
        action=action,
        campaign=shared.first(),
        obj=person,
        summary=summary,
        message=message,
        data={"user": person.get_username(), "campaigns": list(shared.values_list("slug", flat=True))},
    )


def person_create(
    *,
    actor,
    username: str,
    password: str,
    role: str,
    campaigns: list[Campaign],
    first_name: str = "",
    last_name: str = "",
    email: str = "",
):
    """Create an active person with one managed role, working on ``campaigns`` (the actor's).

    The caller has validated the password (Django's validators) and that the user name is free.
    """
    _require(actor)
    if role not in MANAGED_ROLES:
        raise PersonRefused(f"role {role!r} is not one a campaign admin gives")
    allowed = set(campaigns_for(actor).values_list("pk", flat=True))
    if not campaigns or any(c.pk not in allowed for c in campaigns):
        raise PersonRefused("a campaign that is not the admin's")
    User = get_user_model()
    with transaction.atomic():
        person = User._default_manager.create_user(
            username=username, password=password, first_name=first_name, last_name=last_name, email=email
        )
        person.groups.add(Group.objects.get(name=role))
        for campaign in sorted(campaigns, key=lambda c: c.name):
            Membership.objects.create(user=person, campaign=campaign, created_by=actor)
        slugs = sorted(c.slug for c in campaigns)
        audit_record(
            actor=actor,
            action="user.created",
            campaign=sorted(campaigns, key=lambda c: c.name)[0],
            obj=person,
            summary=f"User {username} created as {role} for {', '.join(slugs)}",
            message=stored_sentence(
                staff_text.AUDIT_PERSON_CREATED,
                user=username,
                role=stored_sentence(role),
                campaigns=", ".join(slugs),
            ),
            data={"user": username, "role": role, "campaigns": slugs, "active": True},
        )
    return person


def person_password_set(*, actor, person_id: int, password: str):
    """Give a person a new password (validated by the caller) and end their sessions."""
    with transaction.atomic():
        person = _managed(actor, person_id)
        person.set_password(password)
        person.save(update_fields=["password"])
        summary = f"Password of {person.get_username()} reset by a campaign admin"
        message = stored_sentence(staff_text.AUDIT_PERSON_PASSWORD_RESET, user=person.get_username())
        _person_event(actor, person, "user.password_changed", summary, message)
        user_sessions_end(
            actor=actor, user=person, reason=staff_text.SESSIONS_PASSWORD_RESET_BY_CAMPAIGN_ADMIN
        )
    return person


def person_active_set(*, actor, person_id: int, active: bool):
    """Deactivate (sessions end, sign-in refused) or reactivate a person. Idempotent."""
    with transaction.atomic():
        person = _managed(actor, person_id)
        if person.is_active == active:
            return person
        person.is_active = active
        person.save(update_fields=["is_active"])
        done = "activated" if active else "deactivated"
        sentence = staff_text.AUDIT_PERSON_ACTIVATED if active else staff_text.AUDIT_PERSON_DEACTIVATED
        _person_event(
            actor,
            person,
            f"user.{done}",
            f"User {person.get_username()} {done} by a campaign admin",
            stored_sentence(sentence, user=person.get_username()),
        )
        if not active:
            user_sessions_end(
                actor=actor, user=person, reason=staff_text.SESSIONS_DEACTIVATED_BY_CAMPAIGN_ADMIN
            )
    return person
