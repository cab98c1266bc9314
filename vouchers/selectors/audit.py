"""Read queries for views and tables: scoped to the user's campaigns, no N+1."""

from __future__ import annotations

from django.db.models import QuerySet

from ..access.scoping import scope
from ..models import AuditEvent


def audit_events_for(user) -> QuerySet[AuditEvent]:
    """Audit events of the user's campaigns; events without a campaign only for superusers."""
    qs = AuditEvent.objects.select_related("campaign")
    if user.is_superuser:
        return qs
    return scope(qs, user)
