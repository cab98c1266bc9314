"""People and roles: audit events for users and groups changed in the admin, sessions ended when
someone's rights change, and password reset by e-mail (throttle, mail, record).

The admin (vouchers/admin_accounts.py) calls these inside the transaction of the change, with
the before-and-after it saw. Passwords are never recorded, not even hashed: only that one changed.
"""

from __future__ import annotations

import hashlib
import logging
import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db.models import Q

from .. import staff_text as st
from ..staff_text import stored_sentence
from .audit import audit_record
from .queueing import TaskHook
from .throttle import count_one, window_of

logger = logging.getLogger(__name__)

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


def granted_permissions(user) -> set[str]:
    """Every permission given to ``user`` directly or through groups, whether active or not
    (Django's ``get_all_permissions`` answers nothing for an inactive account)."""
    from django.contrib.auth.models import Permission

    granted = Permission.objects.filter(Q(user=user) | Q(group__user=user)).distinct()
    return _permission_names(granted)


def _permission_names(permissions) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in permissions.select_related("content_type")}


def _added_removed(before: set, after: set) -> dict:
    return {"added": sorted(after - before), "removed": sorted(before - after)}


def _user_event(actor, user, action: str, summary: str, sentence=None, params=None, **data) -> None:
    """An audit event about ``user``; its data always names them. ``sentence`` (with ``params``
    besides the user name) is stored so the audit shows it in the reader's language."""
    message = stored_sentence(sentence, user=user.get_username(), **(params or {})) if sentence else None
    audit_record(
        actor=actor,
        action=action,
        obj=user,
        summary=summary,
        message=message,
        data={"user": user.get_username(), **data},
    )


def _group_event(actor, group: Group, action: str, summary: str, data: dict, sentence, **params) -> None:
    message = stored_sentence(sentence, group=group.name, **params)
    audit_record(actor=actor, action=action, obj=group, summary=summary, data=data, message=message)


def user_created_record(*, actor, user) -> None:
    _user_event(
        actor,
        user,
        "user.created",
        f"User {user.get_username()} created",
        st.AUDIT_USER_CREATED,
        active=user.is_active,
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
        _user_event(
            actor,
            user,
            "user.changed",
            f"User {user.get_username()} changed: {', '.join(sorted(changed))}",
            st.AUDIT_USER_CHANGED,
            {"fields": ", ".join(sorted(changed))},
            fields=changed,
        )
    if "is_active" in before["fields"] and before["fields"]["is_active"] != user.is_active:
        _user_event(
            actor,
            user,
            "user.activated" if user.is_active else "user.deactivated",
            f"User {user.get_username()} {'activated' if user.is_active else 'deactivated'}",
            st.AUDIT_USER_ACTIVATED if user.is_active else st.AUDIT_USER_DEACTIVATED,
        )


def user_roles_record(*, actor, user, before: dict) -> None:
    """Record group (role) and direct permission changes, by name."""
    after = user_snapshot(user)
    for key, action, what, sentence in (
        ("groups", "user.groups_changed", "groups", st.AUDIT_USER_GROUPS_CHANGED),
        ("permissions", "user.permissions_changed", "permissions", st.AUDIT_USER_PERMISSIONS_CHANGED),
    ):
        diff = _added_removed(before[key], after[key])
        if diff["added"] or diff["removed"]:
            changes = ", ".join([*(f"+{n}" for n in diff["added"]), *(f"-{n}" for n in diff["removed"])])
            _user_event(
                actor,
                user,
                action,
                f"{what.capitalize()} of {user.get_username()} changed: " + changes,
                sentence,
                {"changes": changes},
                **diff,
            )


def user_password_record(*, actor, user) -> None:
    """That an admin set (or disabled) a user's password; never the value or its hash."""
    usable = user.has_usable_password()
    _user_event(
        actor,
        user,
        "user.password_changed" if usable else "user.password_disabled",
        f"Password of {user.get_username()} {'changed' if usable else 'disabled'} by an admin",
        st.AUDIT_PASSWORD_CHANGED_BY_ADMIN if usable else st.AUDIT_PASSWORD_DISABLED_BY_ADMIN,
    )


def own_password_record(*, user) -> None:
    """That a person changed their own password (the admin's password page); never the value."""
    _user_event(
        user,
        user,
        "user.password_changed",
        f"Password of {user.get_username()} changed by themselves",
        st.AUDIT_PASSWORD_CHANGED_BY_SELF,
        self=True,
    )


def user_delete(*, actor, user) -> None:
    """Delete a user without history (the admin refuses the others), recording who they were."""
    campaigns = sorted(user.memberships.values_list("campaign__slug", flat=True))
    _user_event(
        actor,
        user,
        "user.deleted",
        f"User {user.get_username()} deleted",
        st.AUDIT_USER_DELETED,
        campaigns=campaigns,
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
        data = {"group": group.name, "permissions": sorted(after["permissions"])}
        _group_event(
            actor, group, "group.created", f"Group {group.name} created", data, st.AUDIT_GROUP_CREATED
        )
        return
    if before["name"] != after["name"]:
        _group_event(
            actor,
            group,
            "group.renamed",
            f"Group {before['name']} renamed to {group.name}",
            {"from": before["name"], "to": group.name},
            st.AUDIT_GROUP_RENAMED,
            old=before["name"],
        )
    diff = _added_removed(before["permissions"], after["permissions"])
    if diff["added"] or diff["removed"]:
        _group_event(
            actor,
            group,
            "group.permissions_changed",
            f"Permissions of group {group.name} changed",
            {"group": group.name, **diff},
            st.AUDIT_GROUP_PERMISSIONS_CHANGED,
        )


def group_delete(*, actor, group: Group) -> None:
    members = sorted(group.user_set.values_list("username", flat=True))
    _group_event(
        actor,
        group,
        "group.deleted",
        f"Group {group.name} deleted",
        {"group": group.name, "members": members},
        st.AUDIT_GROUP_DELETED,
    )
    group.delete()


# --- Sessions: ended when a person's rights change ------------------------------------------


def user_sessions_end(
    *, actor, user, reason, reason_params: dict | None = None, keep_session_key: str | None = None
) -> int:
    """End every session of ``user`` (but ``keep_session_key``), from the database and the cache.

    ``reason`` is a catalogue sentence (``staff_text.SESSIONS_*``, with ``reason_params``): the
    audit keeps it as a code with parameters and shows it in the reader's language.

    Called when someone's rights change (groups, permissions, staff or superuser status,
    activation, password): a session opened before, perhaps on a shared till or by someone who
    looked over a shoulder, must not carry the new rights. Sessions do not record whose they are
    in a column, so each live one is decoded; a back office has a few hundred at most.
    """
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.module_loading import import_string

    store_class = import_string(f"{settings.SESSION_ENGINE}.SessionStore")
    store = store_class()
    ended = 0
    live = Session.objects.filter(expire_date__gt=timezone.now()).exclude(session_key=keep_session_key or "")
    for session in live.iterator():
        if store.decode(session.session_data).get(SESSION_KEY) != str(user.pk):
            continue
        store_class(session.session_key).delete()
        ended += 1
    if ended:
        why = st.stored_sentence(reason, **(reason_params or {}))
        message = st.stored_note("user.sessions_ended", count=ended, user=user.get_username(), reason=why)
        audit_record(
            actor=actor,
            action="user.sessions_ended",
            obj=user,
            summary=message["text"],
            message=message,
            data={"user": user.get_username(), "sessions": ended, "reason": why["text"]},
        )
    return ended


def rights_changed(before: dict, after: dict) -> list[str]:
    """What of a person's rights differs between two :func:`user_snapshot` s (names, sorted)."""
    changed = [
        name
        for name in ("is_active", "is_staff", "is_superuser")
        if before["fields"].get(name) != after["fields"].get(name)
    ]
    changed += [key for key in ("groups", "permissions") if before[key] != after[key]]
    return sorted(changed)


# --- Password reset by e-mail ---------------------------------------------------------------


class ResetThrottled(Exception):
    """Too many reset requests for this address or from this network address."""

    def __init__(self, retry_after: int):
        self.retry_after = max(1, int(retry_after))
        super().__init__(f"Too many password reset requests; try again in {self.retry_after} s.")


class ResetUnavailable(Exception):
    """The shared cache holding the reset counters cannot be reached: no reset for now."""


def _reset_key(kind: str, value: str, window: int) -> str:
    # Hashed: the cache key holds no address and has a fixed length whatever was typed.
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"password-reset:{kind}:{digest}:{window}"


def password_reset_throttle(*, email: str, ip: str | None) -> None:
    """Count a reset request per typed address and per client address; refuse over the limits.

    The address is counted whether or not an account has it, so the answer tells nothing about
    who exists. Fails closed when the cache is unreachable (like the desk's look-up throttle).
    """
    window_seconds = settings.PASSWORD_RESET_WINDOW_SECONDS
    start, retry_after = window_of(time.time(), window_seconds)
    counters = [
        (_reset_key("email", email.strip().casefold(), start), settings.PASSWORD_RESET_LIMIT_PER_EMAIL),
        (_reset_key("ip", ip or "unknown", start), settings.PASSWORD_RESET_LIMIT_PER_IP),
    ]
    try:
        if any((cache.get(key) or 0) >= limit for key, limit in counters):
            raise ResetThrottled(retry_after)
        for key, _limit in counters:
            count_one(key, window_seconds)
    except ResetThrottled:
        logger.warning("Password reset throttled")
        raise
    except Exception as exc:
        logger.warning("Password reset: shared cache unreachable (%s); refused", type(exc).__name__)
        raise ResetUnavailable from exc


def password_reset_send(*, email: str, domain: str, use_https: bool, language: str) -> int:
    """Mail a reset link to every active account with this address and a usable password.

    Runs in a worker (tasks/accounts.py), so the page answers in the same time whether an account
    exists or not. Inactive accounts and unknown addresses get nothing. Each mail sent is an
    audit event on that account (the link and its token are never recorded). Returns the count.
    """
    from django.contrib.auth.forms import PasswordResetForm
    from django.contrib.auth.tokens import default_token_generator
    from django.core.mail import EmailMultiAlternatives
    from django.template import loader
    from django.utils import translation
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    sent = 0
    with translation.override(language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE):
        for user in PasswordResetForm().get_users(email):
            context = {
                "email": email,
                "domain": domain,
                "site_name": domain,
                "uid": urlsafe_base64_encode(force_bytes(user.pk)),
                "user": user,
                "token": default_token_generator.make_token(user),
                "protocol": "https" if use_https else "http",
                "valid_hours": max(1, settings.PASSWORD_RESET_TIMEOUT // 3600),
            }
            subject = "".join(
                loader.render_to_string("registration/password_reset_subject.txt", context).splitlines()
            )
            body = loader.render_to_string("registration/password_reset_email.txt", context)
            EmailMultiAlternatives(subject, body, None, [getattr(user, user.get_email_field_name())]).send()
            _user_event(
                None,
                user,
                "user.password_reset_requested",
                f"Password reset link mailed to {user.get_username()}",
                st.AUDIT_RESET_LINK_MAILED,
            )
            sent += 1
    return sent


def password_reset_record(*, user, ended_sessions: int) -> None:
    """That a person set a new password through a reset link; never the value."""
    _user_event(
        user,
        user,
        "user.password_reset",
        f"Password of {user.get_username()} reset by e-mail link",
        st.AUDIT_PASSWORD_RESET_BY_LINK,
        sessions_ended=ended_sessions,
    )


class ResetNotQueued(Exception):
    """The job that mails the link could not be queued (the broker is unreachable)."""


#: The Celery task that mails the link (vouchers.tasks.accounts fills it in).
RESET_TASK = TaskHook("password_reset_send_task")


def password_reset_request(
    *, email: str, ip: str | None, domain: str, use_https: bool, language: str
) -> None:
    """Throttle, then queue the mail. The same steps whether or not an account has ``email``.

    Raises ResetThrottled, ResetUnavailable (no counters) or ResetNotQueued (no broker): each the
    same for every address, so no answer tells who has an account.
    """
    password_reset_throttle(email=email, ip=ip)
    try:
        RESET_TASK.task.delay(email, domain, use_https, language)
    except Exception as exc:
        logger.warning("Password reset: the mail job could not be queued (%s)", type(exc).__name__)
        raise ResetNotQueued from exc
