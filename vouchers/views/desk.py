"""The cashier desk (check and redeem LINA tokens) and the review of unresolved operations.

Views parse input, call one service or selector and render. The check is a POST whose answer is
rendered directly (the full code never goes into a URL); a redeem POSTs and redirects to its
operation's page, so reloading shows the same result and never redeems again.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages as flash
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, TemplateView, View

from .. import staff_text as messages
from ..forms.desk import CampaignChoiceForm, CheckForm, DeskPreferenceForm, RedeemForm, ResolveForm
from ..models.campaigns import Provider
from ..models.ledger import OperationState
from ..selectors.desk import (
    desk_auto_print,
    desk_campaigns,
    desk_operation,
    desk_redeem_reads,
    last_desk_campaign,
    operation_unresolved,
    operations_unresolved,
    redemptions_today,
)
from ..services.desk_preferences import desk_auto_print_set
from ..services.operations import operation_resolve
from ..services.refusals import Refusal
from ..services.tokens import token_check, token_redeem
from .base import CampaignScopedMixin, PortalPermissionMixin, ReadPageView

logger = logging.getLogger(__name__)

SESSION_CAMPAIGN = "desk_campaign"
#: The request header of the till's fetch (static/js/desk.js) and the answer's marker.
FRAGMENT_HEADER = "X-Desk-Fragment"
FRAGMENT_TEMPLATE = "vouchers/desk_check_fragment.html"
USE_DESK = "vouchers.use_desk"
RESOLVE = "vouchers.resolve_operations"


class DeskHomeView(PortalPermissionMixin, TemplateView):
    """Choose the campaign (remembered in the session) and go to its desk."""

    permission_required = USE_DESK
    template_name = "vouchers/desk_choose.html"

    def get(self, request, *args, **kwargs):
        campaigns = list(desk_campaigns(request.user))
        slugs = {c.slug for c in campaigns}
        wanted = request.GET.get("campaign")
        if wanted not in slugs:
            wanted = request.session.get(SESSION_CAMPAIGN)
        if wanted not in slugs and len(campaigns) == 1:
            wanted = campaigns[0].slug
        if wanted not in slugs:
            # A new session (after login): the till's last campaign is the one last worked on.
            last = last_desk_campaign(request.user)
            wanted = last.slug if last is not None else None
        if wanted in slugs:
            request.session[SESSION_CAMPAIGN] = wanted
            return redirect("vouchers:desk-check", campaign=wanted)
        form = CampaignChoiceForm(campaigns=campaigns)
        return self.render_to_response(self.get_context_data(form=form, campaigns=campaigns))


def preference_form(request) -> DeskPreferenceForm:
    return DeskPreferenceForm(
        initial={"auto_print": desk_auto_print(request.user), "next": request.get_full_path()}
    )


def card_state(card) -> str:
    """The one state a checked token is in, for the big result banner (most severe first)."""
    if not card.valid:
        # A known token with nothing left is "used up", however the provider words its refusal.
        return "used_up" if card.original_value and card.remaining_value == 0 else "invalid"
    if card.expired:
        return "expired"
    if not card.redeemable:
        return "used_up"
    return "valid"


def operation_state(operation) -> str:
    """The one state a redeem's result page says: redeemed, not redeemed, review or unknown."""
    return {
        OperationState.SUCCEEDED: "redeemed",
        OperationState.FAILED: "not_redeemed",
        OperationState.NEEDS_REVIEW: "review",
    }.get(operation.state, "unknown")


class DeskMixin(CampaignScopedMixin):
    permission_required = USE_DESK
    provider = Provider.LINA
    template_name = "vouchers/desk_check.html"

    @cached_property
    def desk_campaign_list(self) -> list:
        return list(desk_campaigns(self.request.user))

    @cached_property
    def campaign(self):
        # The page lists the person's desk campaigns anyway: the URL's one is taken from that list
        # (one statement for both). Superusers may see every campaign: they look up the one.
        if self.request.user.is_superuser:
            return super().campaign
        slug = self.kwargs[self.campaign_url_kwarg]
        for campaign in self.desk_campaign_list:
            if campaign.slug == slug:
                return campaign
        raise Http404("No such campaign.")

    def desk_context(self, **kwargs):
        # Remember the till's campaign; writing only on change spares a session save per scan.
        if self.request.session.get(SESSION_CAMPAIGN) != self.campaign.slug:
            self.request.session[SESSION_CAMPAIGN] = self.campaign.slug
        campaigns = self.desk_campaign_list
        context = {
            "campaign": self.campaign,
            "campaigns": campaigns,
            "campaign_form": CampaignChoiceForm(
                campaigns=campaigns, initial={"campaign": self.campaign.slug}
            ),
            # With a token card open the focus goes to its Redeem step; otherwise to the code.
            "check_form": CheckForm(autofocus="redeem_form" not in kwargs or kwargs["redeem_form"] is None),
            "preference_form": preference_form(self.request),
        }
        context.update(kwargs)
        return context

    def card_response(self, card, redeem_form, **kwargs):
        """The desk with a checked token's card open (and its Redeem step, if any)."""
        context = self.desk_context(card=card, card_state=card_state(card), redeem_form=redeem_form, **kwargs)
        return self.render_to_response(context)


def add_refusal(form, refusal: Refusal) -> None:
    """Show a refusal on its field, or on the whole form when it names none of the form's."""
    form.add_error(refusal.field if refusal.field in form.fields else None, refusal.message)


# Full codes never reach an error report (the same rule as for logs).
@method_decorator(sensitive_post_parameters("code"), name="dispatch")
class DeskCheckView(DeskMixin, TemplateView):
    """The desk page: GET shows the code field; POST checks the code and shows the token card.

    The till's browser sends its check with ``fetch`` and the header ``X-Desk-Fragment: 1``
    (static/js/desk.js): the answer is then the page's content alone, without the page around
    it, which the script puts in place. Without JavaScript the form POSTs and gets the page.
    """

    def wants_fragment(self) -> bool:
        return self.request.method == "POST" and self.request.headers.get(FRAGMENT_HEADER) == "1"

    def get_template_names(self):
        return [FRAGMENT_TEMPLATE] if self.wants_fragment() else [self.template_name]

    def render_to_response(self, context, **response_kwargs):
        response = super().render_to_response(context, **response_kwargs)
        patch_vary_headers(response, [FRAGMENT_HEADER])
        if self.wants_fragment():
            response[FRAGMENT_HEADER] = "1"  # tells the script this is the fragment, not a page
        return response

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.desk_context())

    def post(self, request, *args, **kwargs):
        form = CheckForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.desk_context(check_form=form), status=200)
        try:
            card = token_check(campaign=self.campaign, user=request.user, code=form.cleaned_data["code"])
        except Refusal as exc:
            if not exc.by_provider:
                add_refusal(form, exc)
                return self.render_to_response(self.desk_context(check_form=form))
            logger.info("Check failed for campaign %s: %s (%s)", self.campaign.pk, exc.code, exc.detail)
            return self.render_to_response(self.desk_context(check_form=form, provider_error=exc.message))
        return self.card_response(card, RedeemForm.for_card(card) if card.redeemable else None)


@method_decorator(sensitive_post_parameters("code"), name="dispatch")
class DeskRedeemView(DeskMixin, TemplateView):
    """POST only: redeem, then redirect to the operation's page (GET shows the desk)."""

    http_method_names = ["get", "post"]

    def get(self, request, *args, **kwargs):
        return redirect("vouchers:desk-check", campaign=self.campaign.slug)

    def post(self, request, *args, **kwargs):
        reads = desk_redeem_reads(
            campaign=self.campaign,
            user=request.user,
            check_operation_id=request.POST.get("check"),
            code=request.POST.get("code", ""),
            request_token=request.POST.get("request_token", ""),
        )
        card = reads.card
        if card is None:
            return self.render_to_response(self.desk_context(desk_error=str(messages.CHECK_FIRST)))
        form = RedeemForm(request.POST, card=card)
        if form.is_valid():
            try:
                outcome = token_redeem(
                    campaign=self.campaign,
                    user=request.user,
                    code=card.code,
                    amount=form.cleaned_data["amount"],
                    request_token=form.cleaned_data["request_token"],
                    check_operation_id=card.operation.pk,
                    card=card,
                    prior=reads,
                )
            except Refusal as exc:
                if exc.code == "CodeBusy":
                    return self.card_response(card, RedeemForm.for_card(card), busy=True)
                add_refusal(form, exc)
            else:
                if outcome.replayed:
                    flash.info(request, _("This redemption was already sent once; here is its result."))
                return redirect("vouchers:desk-operation", pk=outcome.operation.pk)
        # Show the errors with a fresh one-time token only when nothing was claimed with the old one.
        return self.card_response(card, form)


class DeskOperationView(PortalPermissionMixin, TemplateView):
    """The result of one redeem: the slip, the refusal, or "outcome unknown" (refreshing).

    Every result page carries the desk's code field (focused), so the next scan at the till
    starts the next customer without a click.
    """

    permission_required = USE_DESK

    def get_template_names(self):
        operation = self.operation
        if operation.state in (OperationState.PENDING, OperationState.UNKNOWN):
            return ["vouchers/desk_unknown.html"]
        return ["vouchers/desk_result.html"]

    def get(self, request, *args, **kwargs):
        self.operation = desk_operation(user=request.user, pk=kwargs["pk"])
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        operation = self.operation
        context.update(
            operation=operation,
            campaign=operation.campaign,
            result_state=operation_state(operation),
            check_form=CheckForm(),
            preference_form=preference_form(self.request),
            refresh_seconds=settings.DESK_UNKNOWN_REFRESH_SECONDS,
            error_text=messages.operation_error_text(operation)
            if operation.state == OperationState.FAILED
            else "",
            unknown_text=messages.OUTCOME_UNKNOWN,
            review_text=messages.NEEDS_REVIEW,
        )
        return context


class DeskPreferenceView(PortalPermissionMixin, View):
    """POST only: the cashier's own desk settings; back to the page they came from."""

    permission_required = USE_DESK
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        form = DeskPreferenceForm(request.POST)
        form.is_valid()  # a checkbox and a path: nothing can make it invalid that matters here
        desk_auto_print_set(user=request.user, on=bool(form.cleaned_data.get("auto_print")))
        target = form.cleaned_data.get("next") or ""
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = reverse("vouchers:desk-home")
        return redirect(target)


class DeskTodayView(ReadPageView):
    permission_required = USE_DESK
    template_name = "vouchers/desk_today.html"
    context_name, read = "today", redemptions_today


class OperationReviewView(ReadPageView):
    """Admins: every unknown / needs-review operation in their campaigns, oldest first."""

    permission_required = RESOLVE
    template_name = "vouchers/desk_review.html"
    context_name, read = "operations", operations_unresolved


class OperationResolveView(PortalPermissionMixin, FormView):
    permission_required = RESOLVE
    template_name = "vouchers/desk_resolve.html"
    form_class = ResolveForm

    @cached_property
    def operation(self):
        return operation_unresolved(user=self.request.user, pk=self.kwargs["pk"])

    def get(self, request, *args, **kwargs):
        self.operation  # noqa: B018 (404 before showing a form for nothing)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["operation"] = self.operation
        return context

    def form_valid(self, form):
        try:
            operation_resolve(
                operation_id=self.operation.pk,
                actor=self.request.user,
                state=form.cleaned_data["state"],
                reason=form.cleaned_data["reason"],
            )
        except Refusal as exc:
            add_refusal(form, exc)
            return self.form_invalid(form)
        flash.success(self.request, _("Operation #%(pk)s is settled.") % {"pk": self.operation.pk})
        return redirect(reverse("vouchers:operation-review"))
