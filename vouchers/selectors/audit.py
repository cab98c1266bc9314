"""Read queries for views and tables: scoped to the user's campaigns, no N+1."""

from __future__ import annotations

from django.db import connection
from django.db.models import Q, QuerySet

from ..access.scoping import scope
from ..models import AuditEvent


def audit_events_for(user) -> QuerySet[AuditEvent]:
    """Audit events of the user's campaigns; events without a campaign only for superusers.

    Without ``data`` (the details JSON): the list and its CSV show the summary only."""
    qs = AuditEvent.objects.select_related("campaign").defer("data")
    if user.is_superuser:
        return qs
    return scope(qs, user)


#: At most this many actions in the admin's "By action" filter.
MAX_ACTIONS = 200


def audit_actions() -> list[str]:
    """The distinct actions of the audit trail, in order.

    A loose index scan: each step asks the action index for the next larger value, so the
    cost grows with the number of actions (a few dozen), not with the number of events; a
    ``SELECT DISTINCT action`` reads every entry of the index (a million at a million events).
    """
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    sql = f"""
        WITH RECURSIVE actions(action) AS (
            SELECT MIN(action) FROM {table}
            UNION ALL
            SELECT (SELECT MIN(action) FROM {table} WHERE action > actions.action)
            FROM actions WHERE actions.action IS NOT NULL
        )
        SELECT action FROM actions WHERE action IS NOT NULL LIMIT %s
    """  # noqa: S608 (the table name is the model's, quoted)
    with connection.cursor() as cursor:
        cursor.execute(sql, [MAX_ACTIONS])
        return [row[0] for row in cursor.fetchall()]


def audit_search(queryset: QuerySet[AuditEvent], term: str) -> QuerySet[AuditEvent]:
    """Events whose action starts with ``term`` (actions are lower-case) or whose actor is
    ``term`` (any case): the action's pattern index and the audit_actor_upper index answer it."""
    return queryset.filter(Q(action__startswith=term.lower()) | Q(actor_name__iexact=term))
