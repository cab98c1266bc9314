"""What the signed-in person is and may do, read once per request in ONE statement.

Django's ModelBackend reads a person's permissions in two statements (their own, their groups')
and the navigation a third time for the group names. Every page needs all three (the view's
permission check, the navigation, the role names in the header), so :func:`viewer_access` reads
them together, one UNION, and leaves the results where ModelBackend looks first
(``_user_perm_cache``, ``_group_perm_cache``, ``_perm_cache`` on the user object). ``has_perm``
then asks the database nothing for the rest of the request.

The cache lives on the request's user object, so it is never older than the request: a role
changed by an administrator counts from the person's next page on (the session is not trusted
with rights).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.db.models import CharField, Value

_ATTRIBUTE = "_portal_access"


@dataclass(frozen=True)
class Access:
    groups: frozenset[str]
    #: "app_label.codename" of every permission held (empty for superusers: they hold all).
    permissions: frozenset[str]
    superuser: bool

    def has(self, permission: str | None) -> bool:
        return permission is None or self.superuser or permission in self.permissions


NOBODY = Access(groups=frozenset(), permissions=frozenset(), superuser=False)


def viewer_access(user) -> Access:
    """The groups and permissions of ``user`` (read once per user object, then kept on it)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return NOBODY
    cached = getattr(user, _ATTRIBUTE, None)
    if cached is not None:
        return cached
    # Rows: (group name, app label, codename) of each group and its permissions (LEFT JOIN: a
    # group without permissions still names the role), and (NULL, app label, codename) of the
    # person's own permissions.
    of_groups = Group.objects.filter(user=user).values_list(
        "name", "permissions__content_type__app_label", "permissions__codename"
    )
    own = Permission.objects.filter(user=user).values_list(
        Value(None, output_field=CharField()), "content_type__app_label", "codename"
    )
    groups, group_perms, user_perms = set(), set(), set()
    for group, app_label, codename in of_groups.order_by().union(own.order_by(), all=True):
        if group is not None:
            groups.add(group)
        if codename is not None:
            (group_perms if group is not None else user_perms).add(f"{app_label}.{codename}")
    access = Access(
        groups=frozenset(groups),
        permissions=frozenset() if user.is_superuser else frozenset(group_perms | user_perms),
        superuser=user.is_superuser,
    )
    if not user.is_superuser:
        # Where ModelBackend looks before querying (superusers: it lists every permission itself).
        user._user_perm_cache = user_perms
        user._group_perm_cache = group_perms
        user._perm_cache = user_perms | group_perms
    setattr(user, _ATTRIBUTE, access)
    return access
