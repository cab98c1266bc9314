"""Changing campaigns, their credentials and memberships, each with its audit event."""

from __future__ import annotations

import functools

from django.db import transaction
from django.utils import timezone

from .. import staff_text
from ..models import Campaign, Membership
from ..providers.endpoints import display_host, origin_of
from ..staff_text import stored_sentence
from .audit import audit_record

# Fields whose change is audited by name; their values are recorded too, as none is secret.
_AUDITED_FIELDS = [
    f.name
    for f in Campaign._meta.get_fields()
    if getattr(f, "editable", False) and f.concrete and f.name not in {"id", "created_at", "updated_at"}
]


def endpoint_changed(old_url: str, new_url: str) -> bool:
    """Whether two base URLs point at different endpoints (scheme, host or port differ).

    A path change on the same host keeps the credentials; anything unreadable counts as changed.
    """
    if (old_url or "") == (new_url or ""):
        return False
    old, new = origin_of(old_url), origin_of(new_url)
    return old is None or new is None or old != new


def campaign_save(
    *,
    campaign: Campaign,
    actor,
    changed_fields: list[str] | None = None,
    new_password: str | None = None,
    new_shared_key: str | None = None,
) -> Campaign:
    """Save a campaign from an admin form. Credentials change only when a new value is given.

    The audit event names the credential that changed, never its value. A newly created campaign
    gets its creator as a member, so a campaign admin does not lose sight of what they created.

    Stored secrets belong to the endpoint they were entered for: when the scheme, host or port
    of the base URL changes, every stored secret not entered anew in this save is cleared in the
    same transaction, so they can never be sent to the new address. Which ones were cleared is
    left in ``campaign.cleared_secrets`` for the caller's message.
    """
    creating = campaign.pk is None
    credentials_changed = []
    if new_password:
        campaign.api_password = new_password
        credentials_changed.append("password")
    if new_shared_key:
        campaign.api_shared_key = new_shared_key
        credentials_changed.append("shared key")
    campaign.cleared_secrets = []
    with transaction.atomic():
        old_url = None
        if not creating:
            old_url = (
                Campaign.objects.select_for_update().filter(pk=campaign.pk).values_list("base_url", flat=True)
            ).first()
        moved = old_url is not None and endpoint_changed(old_url, campaign.base_url)
        if moved:
            if not new_password and campaign.has_password:
                campaign.api_password = ""
                campaign.cleared_secrets.append("password")
            if not new_shared_key and campaign.has_shared_key:
                campaign.api_shared_key = ""
                campaign.cleared_secrets.append("shared key")
        if credentials_changed or campaign.cleared_secrets:
            campaign.credentials_changed_at = timezone.now()
            campaign.credentials_changed_by = actor
        campaign.save()
        if creating and actor is not None and not actor.is_superuser:
            Membership.objects.get_or_create(user=actor, campaign=campaign, defaults={"created_by": actor})
        changes = {
            name: str(getattr(campaign, name)) for name in (changed_fields or []) if name in _AUDITED_FIELDS
        }
        event = functools.partial(audit_record, actor=actor, campaign=campaign, obj=campaign)
        done = "created" if creating else "changed"
        event(
            action=f"campaign.{done}",
            summary=f"Campaign {campaign.name} {done}",
            message=stored_sentence(
                staff_text.AUDIT_CAMPAIGN_CREATED if creating else staff_text.AUDIT_CAMPAIGN_CHANGED,
                campaign=campaign.name,
            ),
            data={"fields": changes},
        )
        if credentials_changed:
            event(
                action="campaign.credentials_changed",
                summary=f"Credentials of {campaign.name} changed: {', '.join(credentials_changed)}",
                message=stored_sentence(
                    staff_text.AUDIT_CREDENTIALS_CHANGED,
                    campaign=campaign.name,
                    fields=", ".join(credentials_changed),
                ),
                data={"changed": credentials_changed},
            )
        if moved:
            event(
                action="campaign.endpoint_changed",
                summary=(
                    f"Base URL of {campaign.name} moved from {display_host(old_url)} to "
                    f"{display_host(campaign.base_url)}"
                    + (
                        f"; stored {', '.join(campaign.cleared_secrets)} cleared"
                        if campaign.cleared_secrets
                        else ""
                    )
                ),
                message=stored_sentence(
                    staff_text.AUDIT_ENDPOINT_MOVED_CLEARED
                    if campaign.cleared_secrets
                    else staff_text.AUDIT_ENDPOINT_MOVED,
                    campaign=campaign.name,
                    old=display_host(old_url),
                    new=display_host(campaign.base_url),
                    **({"cleared": ", ".join(campaign.cleared_secrets)} if campaign.cleared_secrets else {}),
                ),
                data={
                    "old_host": display_host(old_url),
                    "new_host": display_host(campaign.base_url),
                    "cleared": campaign.cleared_secrets,
                    "entered": credentials_changed,
                },
            )
    return campaign


def membership_add(*, user, campaign: Campaign, actor) -> Membership:
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            user=user, campaign=campaign, defaults={"created_by": actor}
        )
        if created:
            audit_record(
                actor=actor,
                action="membership.added",
                campaign=campaign,
                obj=membership,
                summary=f"{user.get_username()} added to {campaign.name}",
                message=stored_sentence(
                    staff_text.AUDIT_MEMBER_ADDED, user=user.get_username(), campaign=campaign.name
                ),
                data={"user": user.get_username()},
            )
    return membership


def membership_remove(*, membership: Membership, actor) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="membership.removed",
            campaign=membership.campaign,
            obj=membership,
            summary=f"{membership.user.get_username()} removed from {membership.campaign.name}",
            message=stored_sentence(
                staff_text.AUDIT_MEMBER_REMOVED,
                user=membership.user.get_username(),
                campaign=membership.campaign.name,
            ),
            data={"user": membership.user.get_username()},
        )
        membership.delete()


def campaign_delete(*, campaign: Campaign, actor) -> None:
    """Delete a campaign without history (the admin refuses the others; the ledger and the audit
    trail PROTECT them). The event names the campaign but cannot point at it any more."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="campaign.deleted",
            obj=campaign,
            summary=f"Campaign {campaign.name} deleted",
            message=stored_sentence(staff_text.AUDIT_CAMPAIGN_DELETED, campaign=campaign.name),
            data={"name": campaign.name, "slug": campaign.slug, "provider": campaign.provider},
        )
        campaign.delete()
