"""Admin for people and roles (auth User and Group), audited, and deletion that respects history.

Django's own UserAdmin and GroupAdmin do the work; these subclasses capture what was there
before a change and hand before-and-after to vouchers.services.accounts, inside the admin's
transaction. Passwords are recorded as "changed", never by value.

Campaign admins (staff, not superusers) see only the people of their own campaigns
(``scoping.users_for``): the list and its count, every page of a person by URL (others are a
404, like a person that does not exist) and the autocomplete. Only superusers change roles,
staff or superuser status and permissions, and nobody else may change a person who holds more
rights than they do: a campaign admin can never grant more than they have. The list filters
below limit their choices the same way on every admin page.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.filters import RelatedFieldListFilter
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .. import staff_text as st
from ..access.scoping import campaigns_for, users_for
from ..services import accounts

User = get_user_model()


class ProtectedHistoryDeleteMixin:
    """Objects with history (audit events, ledger rows PROTECT them) cannot be deleted.

    Django's admin would show a list of the protected rows; this says what to do instead
    (``protected_message``) and goes back, for the delete page and the bulk delete action alike.
    """

    protected_message = _("%(name)s has a history and cannot be deleted.")

    def _has_protected_history(self, request, objs) -> bool:
        _deletable, _counts, _perms_needed, protected = self.get_deleted_objects(objs, request)
        return bool(protected)

    def _refuse_delete(self, request, objs) -> None:
        for obj in objs:
            messages.error(request, self.protected_message % {"name": str(obj)})

    def delete_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if (
            obj is not None
            and self.has_delete_permission(request, obj)
            and self._has_protected_history(request, [obj])
        ):
            self._refuse_delete(request, [obj])
            opts = self.opts
            return redirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]),
            )
        return super().delete_view(request, object_id, extra_context)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            func, name, description = actions["delete_selected"]

            def delete_selected_unless_protected(modeladmin, request, queryset):
                protected = [obj for obj in queryset if self._has_protected_history(request, [obj])]
                if protected:
                    self._refuse_delete(request, protected)
                    return None  # back to the list, nothing deleted
                return func(modeladmin, request, queryset)

            actions["delete_selected"] = (delete_selected_unless_protected, name, description)
        return actions


class _ScopedListFilter(RelatedFieldListFilter):
    """A "by ..." filter listing only what the person looking may see (``allowed``).

    Django's own filter lists every row in the database; its "related only" variant scans the
    whole list (a DISTINCT over a million ledger rows) to find them.
    """

    def field_choices(self, field, request, model_admin):
        return field.get_choices(
            include_blank=False,
            ordering=self.field_admin_ordering(field, request, model_admin),
            limit_choices_to={"pk__in": self.allowed(request.user).values("pk")},
        )


class CampaignListFilter(_ScopedListFilter):
    """ "By campaign" with only the campaigns of the person looking (all for superusers)."""

    allowed = staticmethod(campaigns_for)


class UserListFilter(_ScopedListFilter):
    """ "By user" (actor, seller, member) with only the people the person looking may see."""

    allowed = staticmethod(users_for)


class DeleteEachMixin:
    """A bulk delete deletes one by one through ``delete_model``, so each is its service's
    audited deletion."""

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


#: User fields that grant rights; only superusers change them.
PRIVILEGE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class PortalUserAdmin(DeleteEachMixin, ProtectedHistoryDeleteMixin, UserAdmin):
    protected_message = _(
        "%(name)s has a history (audit trail, ledger) and cannot be deleted. "
        "Deactivate the account instead: untick “Active” and save."
    )

    # --- Who sees and changes whom --------------------------------------------------------

    def get_queryset(self, request):
        return users_for(request.user, super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        return fields + tuple(name for name in PRIVILEGE_FIELDS if name not in fields)

    def _may_change(self, request, obj) -> bool:
        """A non-superuser changes only people of their campaigns who hold no right they lack."""
        actor = request.user
        if obj is None or actor.is_superuser:
            return True
        if obj.is_superuser:
            return False
        if not users_for(actor).filter(pk=obj.pk).exists():
            return False
        # What the account is granted, active or not: reactivating it must not hand out more.
        return accounts.granted_permissions(obj) <= actor.get_all_permissions()

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._may_change(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._may_change(request, obj)

    def _in_scope_or_404(self, request, object_id) -> None:
        # Someone outside the admin's campaigns looks exactly like someone who does not exist.
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._in_scope_or_404(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._in_scope_or_404(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._in_scope_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term and self._adding_a_member(request):
            # To put someone who is on none of their campaigns yet on one, a campaign admin types
            # the exact user name (a superuser gives it to them); nobody outside is suggested.
            queryset = queryset | User._default_manager.filter(username__iexact=term, is_active=True)
        return queryset, may_have_duplicates

    @staticmethod
    def _adding_a_member(request) -> bool:
        return (
            request.resolver_match is not None
            and request.resolver_match.url_name == "autocomplete"
            and request.GET.get("app_label") == "vouchers"
            and request.GET.get("model_name") == "membership"
            and request.GET.get("field_name") == "user"
            and request.user.has_perm("vouchers.add_membership")
        )

    # --- Audit ------------------------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        before = accounts.user_snapshot(User.objects.get(pk=obj.pk) if change else None)
        request._audit_user_before = before  # read by save_related, same request
        super().save_model(request, obj, form, change)
        if change:
            accounts.user_fields_record(actor=request.user, user=obj, before=before)
        else:
            accounts.user_created_record(actor=request.user, user=obj)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        before = getattr(request, "_audit_user_before", None) or accounts.user_snapshot(None)
        accounts.user_roles_record(actor=request.user, user=form.instance, before=before)
        if change:
            changed = accounts.rights_changed(before, accounts.user_snapshot(form.instance))
            if changed:
                self._end_sessions(
                    request,
                    form.instance,
                    reason=st.SESSIONS_RIGHTS_CHANGED,
                    reason_params={"rights": ", ".join(changed)},
                )

    def user_change_password(self, request, id, form_url=""):
        self._in_scope_or_404(request, id)
        # One transaction for the new password and its audit event; log_change below marks success.
        with transaction.atomic():
            request._audit_password_view = True
            return super().user_change_password(request, id, form_url)

    def log_change(self, request, obj, message):
        # Django calls this on the password page only once the new password is saved.
        if getattr(request, "_audit_password_view", False):
            accounts.user_password_record(actor=request.user, user=obj)
            self._end_sessions(request, obj, reason=st.SESSIONS_PASSWORD_CHANGED_BY_ADMIN)
        return super().log_change(request, obj, message)

    @staticmethod
    def _end_sessions(request, user, *, reason, reason_params: dict | None = None) -> None:
        """That person's other sessions end; one changing their own rights keeps a new session."""
        own = user.pk == request.user.pk
        accounts.user_sessions_end(
            actor=request.user,
            user=user,
            reason=reason,
            reason_params=reason_params,
            keep_session_key=request.session.session_key if own else None,
        )
        if own:
            request.session.cycle_key()

    def delete_model(self, request, obj):
        accounts.user_delete(actor=request.user, user=obj)


@admin.register(Group)
class PortalGroupAdmin(DeleteEachMixin, GroupAdmin):
    # A group's permissions are every member's rights: only superusers shape them.
    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        request._audit_group_before = accounts.group_snapshot(
            Group.objects.get(pk=obj.pk) if change else None
        )
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        before = getattr(request, "_audit_group_before", None) or accounts.group_snapshot(None)
        accounts.group_record(actor=request.user, group=form.instance, before=before)

    def delete_model(self, request, obj):
        accounts.group_delete(actor=request.user, group=obj)
