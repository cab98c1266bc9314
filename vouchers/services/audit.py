"""Writing the audit trail. Call inside the transaction of the change being recorded."""

from __future__ import annotations

from typing import Any

from ..models import AuditEvent, Campaign


def audit_record(
    *,
    actor,
    action: str,
    summary: str,
    campaign: Campaign | None = None,
    obj: Any = None,
    data: dict | None = None,
    message: dict | None = None,
) -> AuditEvent:
    """Append one audit event. ``data`` must never hold secret values, only what changed.

    ``message`` (``staff_text.stored``) lets pages show the summary in the reader's language;
    ``summary`` stays the English text the list searches and old rows show.
    """
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        actor=actor if is_user else None,
        actor_name=actor.get_username() if is_user else "system",
        action=action,
        campaign=campaign,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        summary=summary,
        data=data or {},
        message=message or {},
    )
