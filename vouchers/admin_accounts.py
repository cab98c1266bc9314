"""Admin for people and roles (auth User and Group), audited, and deletion that respects history.

Django's own UserAdmin and GroupAdmin do the work; these subclasses only capture what was
there before a change and hand before-and-after to vouchers.services.accounts, inside the
admin's transaction. Passwords are recorded as "changed", never by value.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .services import accounts

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


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class PortalUserAdmin(ProtectedHistoryDeleteMixin, UserAdmin):
    protected_message = _(
        "%(name)s has a history (audit trail, ledger) and cannot be deleted. "
        "Deactivate the account instead: untick “Active” and save."
    )

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

    def user_change_password(self, request, id, form_url=""):
        # One transaction for the new password and its audit event; log_change below marks success.
        with transaction.atomic():
            request._audit_password_view = True
            return super().user_change_password(request, id, form_url)

    def log_change(self, request, obj, message):
        # Django calls this on the password page only once the new password is saved.
        if getattr(request, "_audit_password_view", False):
            accounts.user_password_record(actor=request.user, user=obj)
        return super().log_change(request, obj, message)

    def delete_model(self, request, obj):
        accounts.user_delete(actor=request.user, user=obj)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            accounts.user_delete(actor=request.user, user=user)


@admin.register(Group)
class PortalGroupAdmin(GroupAdmin):
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

    def delete_queryset(self, request, queryset):
        for group in queryset:
            accounts.group_delete(actor=request.user, group=group)
