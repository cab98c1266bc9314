"""Admin for campaign admins: campaigns (credentials write-only), memberships, read-only records.

Campaign admins see only their own campaigns here (the same scoping helper as every page);
superusers see all. Credential values are never shown, listed or searchable.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import formats, timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters

from ..access.scoping import campaigns_for, scope
from ..forms.campaigns import CampaignAdminForm
from ..models import AuditEvent, Campaign, Membership, ProviderOperation, SaleTemplate
from ..output.tables import BoundedPaginator
from ..selectors.audit import audit_actions, audit_search
from ..services.campaigns import campaign_delete, campaign_save, membership_add, membership_remove
from ..services.sales import sale_template_delete, sale_template_save
from .accounts import CampaignListFilter, DeleteEachMixin, ProtectedHistoryDeleteMixin
from .connection import MAX_CONNECTION_TESTS, ConnectionTestAdminMixin

__all__ = ["MAX_CONNECTION_TESTS"]  # tests and callers import it from here


class SafeAutocompleteSelect(AutocompleteSelect):
    """Django's autocomplete re-renders a refused form by looking the submitted value up; a
    value that is no key at all (a forged or garbled POST, e.g. "abc") made that lookup raise,
    a server error; so did a number beyond the column on SQLite. Values the key field cannot
    read or store are left out: the form still says why."""

    def optgroups(self, name, value, attr=None):
        key = self.field.target_field
        low, high = connections[self.db or DEFAULT_DB_ALIAS].ops.integer_field_range(key.get_internal_type())
        readable = []
        for item in value:
            try:
                number = key.to_python(item)
            except ValidationError:
                continue
            if isinstance(number, int) and not (low is None or low <= number <= high):
                continue  # beyond the column: the database would raise rather than find nothing
            readable.append(item)
        return super().optgroups(name, readable, attr)


class SafeAutocompleteMixin:
    """Use SafeAutocompleteSelect for every foreign key in ``autocomplete_fields``."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in self.get_autocomplete_fields(request) and "widget" not in kwargs:
            kwargs["widget"] = SafeAutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ScopedAdminMixin:
    """Only the rows of the viewer's campaigns (``scope_field`` names the campaign relation);
    a ``campaign`` field offers only those campaigns (of ``campaign_provider`` if set)."""

    scope_field = "campaign"
    campaign_provider: str | None = None

    def get_queryset(self, request):
        return scope(super().get_queryset(request), request.user, field=self.scope_field)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "campaign":
            kwargs["queryset"] = campaigns_for(request.user, provider=self.campaign_provider)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class MembershipInline(SafeAutocompleteMixin, admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "created_at", "created_by")
    readonly_fields = ("created_at", "created_by")
    autocomplete_fields = ("user",)


@admin.register(Campaign)
class CampaignAdmin(
    ScopedAdminMixin, ConnectionTestAdminMixin, DeleteEachMixin, ProtectedHistoryDeleteMixin, admin.ModelAdmin
):
    form = CampaignAdminForm
    protected_message = _(
        "%(name)s has a history (audit trail, ledger, sales) and cannot be deleted. "
        "Switch it off instead: untick “live” and save."
    )
    list_display = ("name", "provider", "is_live", "starts_on", "ends_on", "credentials_changed_at")
    list_filter = ("provider", "is_live")
    search_fields = ("name", "slug")  # never credentials
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("credentials_status", "created_at", "updated_at")
    inlines = [MembershipInline]
    actions = ["test_connection_action"]
    change_form_template = "admin/vouchers/campaign/change_form.html"
    fieldsets = (
        (None, {"fields": ("name", "slug", "provider", "is_live", ("starts_on", "ends_on"))}),
        (_("Connection"), {"fields": ("base_url", ("connect_timeout", "read_timeout"))}),
        (
            _("Credentials"),
            {
                "fields": ("api_username", "new_password", "new_shared_key", "credentials_status"),
                "description": _("Secrets are stored encrypted and never shown again."),
            },
        ),
        (
            _("LINA options"),
            {
                "classes": ("collapse",),
                "fields": (
                    "lina_hash_recipe",
                    ("lina_login_user_field", "lina_login_pass_field"),
                    "lina_session_phrases",
                    ("sale_min_amount", "sale_max_amount"),
                ),
            },
        ),
        (
            _("Allsafe options"),
            {
                "classes": ("collapse",),
                "fields": (
                    "allsafe_allocate_path",
                    ("allsafe_vendor_field", "allsafe_value_field", "allsafe_reference_field"),
                    ("poll_interval_minutes", "low_stock_threshold", "stale_after_intervals"),
                ),
            },
        ),
        (_("Record"), {"fields": ("created_at", "updated_at")}),
    )

    scope_field = "pk"

    @method_decorator(sensitive_post_parameters("new_password", "new_shared_key"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("Stored credentials"))
    def credentials_status(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        parts = [
            _("password set") if obj.has_password else _("no password"),
            _("shared key set") if obj.has_shared_key else _("no shared key"),
        ]
        if obj.credentials_changed_at:
            who = obj.credentials_changed_by.get_username() if obj.credentials_changed_by else _("unknown")
            parts.append(
                _("last set %(when)s by %(who)s")
                % {
                    "when": formats.date_format(
                        timezone.localtime(obj.credentials_changed_at), "SHORT_DATETIME_FORMAT"
                    ),
                    "who": who,
                }
            )
        return " · ".join(str(p) for p in parts)

    def save_model(self, request, obj, form, change):
        campaign_save(
            campaign=obj,
            actor=request.user,
            changed_fields=list(form.changed_data),
            new_password=form.cleaned_data.get("new_password") or None,
            new_shared_key=form.cleaned_data.get("new_shared_key") or None,
        )
        cleared = getattr(obj, "cleared_secrets", [])
        if cleared:
            labels = {"password": gettext("API password"), "shared key": gettext("Shared key (LINA)")}
            messages.warning(
                request,
                gettext(
                    "%(name)s: the base URL now points to another address, so the stored credentials "
                    "were cleared (%(cleared)s). Enter them again before the campaign can connect."
                )
                % {"name": obj.name, "cleared": ", ".join(labels[c] for c in cleared)},
            )

    def save_formset(self, request, form, formset, change):
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        instances = formset.save(commit=False)
        for membership in formset.deleted_objects:
            membership_remove(membership=membership, actor=request.user)
        for membership in instances:
            if membership.pk is None:
                membership_add(user=membership.user, campaign=form.instance, actor=request.user)
            else:
                membership.save()
        return None

    def delete_model(self, request, obj):
        campaign_delete(campaign=obj, actor=request.user)

    def has_delete_permission(self, request, obj=None):
        # Campaigns with a ledger cannot be deleted (the ledger protects them); switch them off instead.
        return request.user.is_superuser and super().has_delete_permission(request, obj)


@admin.register(Membership)
class MembershipAdmin(ScopedAdminMixin, DeleteEachMixin, SafeAutocompleteMixin, admin.ModelAdmin):
    list_display = ("user", "campaign", "created_at", "created_by")
    list_filter = (("campaign", CampaignListFilter),)
    search_fields = ("user__username", "campaign__name")
    autocomplete_fields = ("user",)
    readonly_fields = ("created_at", "created_by")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "campaign", "created_by")

    def save_model(self, request, obj, form, change):
        if change:
            # Moving a membership is a removal plus an addition, each audited.
            original = Membership.objects.get(pk=obj.pk)
            membership_remove(membership=original, actor=request.user)
        obj.pk = None
        saved = membership_add(user=obj.user, campaign=obj.campaign, actor=request.user)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        membership_remove(membership=obj, actor=request.user)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that are written by services only: no add, change or delete here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LargeListAdminMixin:
    """Changelists of tables that grow without end (ledger, audit trail): constant work per page.

    The paginator counts at most COUNT_CAP + 1 rows (output/tables.BoundedPaginator; the
    pagination template says "more than 10,000"), the unfiltered total is never counted
    (``show_full_result_count``), facet counts are off, and there is no ``date_hierarchy``
    (its drill-down is a DISTINCT over every row's date); a date list filter (ranges of the
    indexed timestamp) takes its place.
    """

    paginator = BoundedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER


class ActionListFilter(admin.SimpleListFilter):
    """ "By action": the distinct actions read by skipping along the action index
    (selectors/audit.audit_actions), not a DISTINCT over every event."""

    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(action, action) for action in audit_actions()]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(action=value) if value else queryset


@admin.register(ProviderOperation)
class ProviderOperationAdmin(LargeListAdminMixin, ScopedAdminMixin, ReadOnlyAdmin):
    list_display = ("created_at", "campaign", "kind", "state", "code_masked", "amount", "user", "duration_ms")
    list_filter = ("kind", "state", ("campaign", CampaignListFilter), "created_at")
    list_select_related = ("campaign", "user")


@admin.register(AuditEvent)
class AuditEventAdmin(LargeListAdminMixin, ScopedAdminMixin, ReadOnlyAdmin):
    list_display = ("created_at", "actor_name", "action", "campaign", "summary")
    list_filter = (ActionListFilter, "created_at")
    list_select_related = ("campaign",)
    # Searched through get_search_results below: an action prefix or a person's name, both
    # answered by an index. (The summary is free text: a contains-search scans every event.)
    search_fields = ("action", "actor_name")
    search_help_text = _("An action (or its beginning, e.g. “token.”) or who did it.")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return audit_search(queryset, term), False


# --- Sales: named LINA templates ----------------------------------------------------------------


class SaleTemplateAdminForm(forms.ModelForm):
    """Layouts are typed as "1, 2, 5" rather than JSON."""

    layouts_text = forms.CharField(
        label=_("allowed layouts"),
        required=False,
        max_length=2000,
        help_text=_("Layout numbers LINA allows for this template, separated by commas. Empty: no layouts."),
    )

    class Meta:
        model = SaleTemplate
        fields = ["campaign", "name", "template_hash", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["layouts_text"] = ", ".join(str(n) for n in self.instance.layouts)

    def clean_layouts_text(self):
        text = self.cleaned_data.get("layouts_text") or ""
        numbers = []
        for part in text.replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            # ASCII and at most six digits first: int() refuses digit strings beyond 4,300
            # digits and superscripts ("²" is a digit to isdigit()) with a server error.
            if not (part.isascii() and part.isdigit() and len(part) <= 6) or int(part) < 1:
                raise forms.ValidationError(
                    _("“%(value)s” is not a layout number (whole numbers from 1).") % {"value": part}
                )
            numbers.append(int(part))
        return sorted(set(numbers))

    def clean_template_hash(self):
        value = (self.cleaned_data.get("template_hash") or "").strip()
        if not value or any(ch.isspace() for ch in value):
            raise forms.ValidationError(
                _("Paste the template hash from the LINA back office, without spaces.")
            )
        return value

    def save(self, commit=True):
        self.instance.allowed_layouts = self.cleaned_data.get("layouts_text") or []
        return super().save(commit=commit)


@admin.register(SaleTemplate)
class SaleTemplateAdmin(ScopedAdminMixin, DeleteEachMixin, admin.ModelAdmin):
    form = SaleTemplateAdminForm
    list_display = ("name", "campaign", "layouts_display", "is_active", "updated_at")
    list_filter = ("is_active", ("campaign", CampaignListFilter))
    list_select_related = ("campaign",)
    search_fields = ("name",)
    fields = ("campaign", "name", "template_hash", "layouts_text", "is_active")
    campaign_provider = "lina"

    @admin.display(description=_("layouts"))
    def layouts_display(self, obj):
        return ", ".join(str(n) for n in obj.layouts) or "—"

    def save_model(self, request, obj, form, change):
        obj.allowed_layouts = form.cleaned_data.get("layouts_text") or []
        sale_template_save(template=obj, actor=request.user, changed_fields=list(form.changed_data))

    def delete_model(self, request, obj):
        sale_template_delete(template=obj, actor=request.user)
