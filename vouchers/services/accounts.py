"""Audit events for people and roles: users and groups changed in the admin.

The admin (vouchers/admin_accounts.py) calls these inside the transaction of the change, with
the before-and-after it saw. Passwords are never recorded, not even hashed: only that one changed.
"""

from __future__ import annotations

from django.contrib.auth.models import Group

from .audit import audit_record

# User fields whose old and new values are recorded; none is secret (the password is not here).
USER_AUDITED_FIELDS = (
    "username",
    "first_name",
    "last_name",
    "email",
    "is_active",
    "is_staff",
    "is_superuser",
)


def user_snapshot(user) -> dict:
    """What a user change is compared against: the audited fields, groups and permissions."""
    if user is None or user.pk is None:
        return {"fields": {}, "groups": set(), "permissions": set()}
    return {
        "fields": {name: getattr(user, name) for name in USER_AUDITED_FIELDS},
        "groups": set(user.groups.values_list("name", flat=True)),
        "permissions": _permission_names(user.user_permissions.all()),
    }


def _permission_names(permissions) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in permissions.select_related("content_type")}


def _added_removed(before: set, after: set) -> dict:
    return {"added": sorted(after - before), "removed": sorted(before - after)}


def user_created_record(*, actor, user) -> None:
    audit_record(
        actor=actor,
        action="user.created",
        obj=user,
        summary=f"User {user.get_username()} created",
        data={"user": user.get_username(), "active": user.is_active},
    )


def user_fields_record(*, actor, user, before: dict) -> None:
    """Record changed plain fields; (de)activation gets an event of its own, being the one that counts."""
    after = user_snapshot(user)["fields"]
    changed = {
        name: [before["fields"].get(name), value]
        for name, value in after.items()
        if before["fields"].get(name) != value and name != "is_active"
    }
    if changed:
        audit_record(
            actor=actor,
            action="user.changed",
            obj=user,
            summary=f"User {user.get_username()} changed: {', '.join(sorted(changed))}",
            data={"user": user.get_username(), "fields": changed},
        )
    if "is_active" in before["fields"] and before["fields"]["is_active"] != user.is_active:
        audit_record(
            actor=actor,
            action="user.activated" if user.is_active else "user.deactivated",
            obj=user,
            summary=f"User {user.get_username()} {'activated' if user.is_active else 'deactivated'}",
            data={"user": user.get_username()},
        )


def user_roles_record(*, actor, user, before: dict) -> None:
    """Record group (role) and direct permission changes, by name."""
    after = user_snapshot(user)
    for key, action, what in (
        ("groups", "user.groups_changed", "groups"),
        ("permissions", "user.permissions_changed", "permissions"),
    ):
        diff = _added_removed(before[key], after[key])
        if diff["added"] or diff["removed"]:
            audit_record(
                actor=actor,
                action=action,
                obj=user,
                summary=f"{what.capitalize()} of {user.get_username()} changed: "
                + ", ".join([*(f"+{n}" for n in diff["added"]), *(f"-{n}" for n in diff["removed"])]),
                data={"user": user.get_username(), **diff},
            )


def user_password_record(*, actor, user) -> None:
    """That an admin set (or disabled) a user's password; never the value or its hash."""
    usable = user.has_usable_password()
    audit_record(
        actor=actor,
        action="user.password_changed" if usable else "user.password_disabled",
        obj=user,
        summary=f"Password of {user.get_username()} {'changed' if usable else 'disabled'} by an admin",
        data={"user": user.get_username()},
    )


def own_password_record(*, user) -> None:
    """That a person changed their own password (the admin's password page); never the value."""
    audit_record(
        actor=user,
        action="user.password_changed",
        obj=user,
        summary=f"Password of {user.get_username()} changed by themselves",
        data={"user": user.get_username(), "self": True},
    )


def user_delete(*, actor, user) -> None:
    """Delete a user without history (the admin refuses the others), recording who they were."""
    campaigns = sorted(user.memberships.values_list("campaign__slug", flat=True))
    audit_record(
        actor=actor,
        action="user.deleted",
        obj=user,
        summary=f"User {user.get_username()} deleted",
        data={"user": user.get_username(), "campaigns": campaigns},
    )
    user.delete()


def group_snapshot(group: Group | None) -> dict:
    if group is None or group.pk is None:
        return {"name": None, "permissions": set()}
    return {"name": group.name, "permissions": _permission_names(group.permissions.all())}


def group_record(*, actor, group: Group, before: dict) -> None:
    """Record a group's creation, renaming and permission changes."""
    after = group_snapshot(group)
    if before["name"] is None:
        audit_record(
            actor=actor,
            action="group.created",
            obj=group,
            summary=f"Group {group.name} created",
            data={"group": group.name, "permissions": sorted(after["permissions"])},
        )
        return
    if before["name"] != after["name"]:
        audit_record(
            actor=actor,
            action="group.renamed",
            obj=group,
            summary=f"Group {before['name']} renamed to {group.name}",
            data={"from": before["name"], "to": group.name},
        )
    diff = _added_removed(before["permissions"], after["permissions"])
    if diff["added"] or diff["removed"]:
        audit_record(
            actor=actor,
            action="group.permissions_changed",
            obj=group,
            summary=f"Permissions of group {group.name} changed",
            data={"group": group.name, **diff},
        )


def group_delete(*, actor, group: Group) -> None:
    members = sorted(group.user_set.values_list("username", flat=True))
    audit_record(
        actor=actor,
        action="group.deleted",
        obj=group,
        summary=f"Group {group.name} deleted",
        data={"group": group.name, "members": members},
    )
    group.delete()
