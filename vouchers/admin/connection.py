"""The campaign admin's "Test connection": an action on the list and buttons on the change page.

The buttons submit the change form itself (``formaction``) to the test URL, so the test runs on
the values in the form, saved or not; they sit after the save buttons, so Enter in a field still
saves. The page comes back as the same bound form, never saved,
with the report as messages: a failure only ever as errors (never a green message), naming the
step that failed and what to check. A POST without the form's fields (the list action, or a user
who may only view the campaign) tests the saved values.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters

from ..services.connection import ConnectionReport, campaign_test_connection

#: Campaigns one "Test connection" action may test (each waits for its provider).
MAX_CONNECTION_TESTS = 5

#: Marks a request whose change form is only tested: the value is the "detect recipe" flag.
_TEST_ONLY = "_vouchers_connection_test"


class _TestOnlyForm:
    """Mixed into the change form for a test: validates as usual, but reports itself invalid,
    so the admin renders the bound form again instead of saving it. ``ready_to_test`` says
    whether the values were valid."""

    ready_to_test = False

    def is_valid(self):
        self.ready_to_test = super().is_valid()
        return False


class ConnectionTestAdminMixin:
    """For CampaignAdmin (change_form_template shows the buttons)."""

    def has_test_connection_permission(self, request, obj=None):
        return request.user.has_perm("vouchers.test_connection")

    @admin.action(description=_("Test connection"), permissions=["test_connection"])
    def test_connection_action(self, request, queryset):
        # Each test may wait for the provider's timeouts: a long selection would hold a worker.
        if queryset.count() > MAX_CONNECTION_TESTS:
            messages.error(
                request,
                gettext("Test at most %(limit)d campaigns at a time; nothing was tested.")
                % {"limit": MAX_CONNECTION_TESTS},
            )
            return
        for campaign in queryset:  # already scoped to the user's campaigns by get_queryset
            self._report(request, campaign, campaign_test_connection(campaign=campaign, actor=request.user))

    def get_urls(self):
        return [
            path(
                "<path:object_id>/test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name="vouchers_campaign_test_connection",
            ),
            *super().get_urls(),
        ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if getattr(request, _TEST_ONLY, None) is None:
            return form
        return type(f"TestOnly{form.__name__}", (_TestOnlyForm, form), {})

    @method_decorator(sensitive_post_parameters("new_password", "new_shared_key"))
    def test_connection_view(self, request, object_id):
        """POST only: a test writes a ledger row and an audit event."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_test_connection_permission(request):
            raise PermissionDenied
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None:
            raise Http404
        detect = campaign.is_lina and request.POST.get("detect_recipe") == "1"
        if "base_url" in request.POST and self.has_change_permission(request, campaign):
            return self._test_typed(request, campaign, detect)
        report = campaign_test_connection(campaign=campaign, actor=request.user, detect_recipe=detect)
        self._report(request, campaign, report)
        return redirect("admin:vouchers_campaign_change", campaign.pk)

    def _test_typed(self, request, campaign, detect: bool):
        """Render the change form bound to what was posted (never saved) and test those values."""
        setattr(request, _TEST_ONLY, detect)
        change_url = reverse("admin:vouchers_campaign_change", args=[campaign.pk])
        response = self.changeform_view(
            request, str(campaign.pk), form_url=change_url, extra_context={"can_test_connection": True}
        )
        if not isinstance(response, TemplateResponse) or "adminform" not in (response.context_data or {}):
            return response
        form = response.context_data["adminform"].form
        if not form.ready_to_test:
            messages.error(
                request,
                gettext("%(name)s: nothing was tested. Correct the errors below, then test again.")
                % {"name": campaign.name},
            )
            return response
        report = campaign_test_connection(
            campaign=campaign,
            actor=request.user,
            detect_recipe=detect,
            typed=form.instance,
            new_password=form.cleaned_data.get("new_password") or "",
            new_shared_key=form.cleaned_data.get("new_shared_key") or "",
        )
        self._report(request, campaign, report)
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_test_connection": self.has_test_connection_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def _report(self, request, campaign, report: ConnectionReport) -> None:
        steps = "; ".join(f"{'✓' if step.ok else '✗'} {step.detail}" for step in report.steps)
        if report.ok:
            messages.success(request, f"{campaign.name}: {report.message} ({steps})")
            return
        # Every line of a failure is an error: the admin draws info and success alike in green.
        messages.error(request, f"{campaign.name}: {report.message}")
        failed = report.failed_step
        if failed is not None:
            messages.error(
                request,
                gettext("Failed step: %(step)s — %(detail)s")
                % {"step": failed.label, "detail": failed.detail},
            )
        if report.working_recipe:
            messages.warning(
                request,
                gettext("Working LINA login recipe: %(recipe)s") % {"recipe": report.working_recipe},
            )
        if report.what_to_check:
            messages.error(
                request, gettext("What to check: %(items)s") % {"items": " · ".join(report.what_to_check)}
            )
        if steps:
            messages.error(request, gettext("Steps: %(steps)s") % {"steps": steps})
