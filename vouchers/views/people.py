"""People: campaign admins add cashiers and marketing managers to their campaigns, give them a
new password and deactivate them (services/people.py decides and audits; selectors/people.py
says whom an admin sees and manages)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView, TemplateView, View

from ..forms.people import PersonCreateForm, PersonPasswordForm
from ..selectors.people import people_for, person_is_manageable
from ..services.people import (
    MANAGE_PEOPLE,
    PersonRefused,
    person_active_set,
    person_create,
    person_password_set,
)
from .base import PortalPermissionMixin


class PeopleListView(PortalPermissionMixin, TemplateView):
    permission_required = MANAGE_PEOPLE
    template_name = "vouchers/people_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["people"] = [(p, person_is_manageable(p)) for p in people_for(self.request.user)]
        return context


@method_decorator(sensitive_post_parameters("password1", "password2"), name="dispatch")
class PersonCreateView(PortalPermissionMixin, FormView):
    permission_required = MANAGE_PEOPLE
    template_name = "vouchers/person_create.html"
    form_class = PersonCreateForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "actor": self.request.user}

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            person = person_create(
                actor=self.request.user,
                username=data["username"],
                password=data["password1"],
                role=data["role"],
                campaigns=list(data["campaigns"]),
                first_name=data["first_name"],
                last_name=data["last_name"],
                email=data["email"],
            )
        except PersonRefused:
            form.add_error(None, _("You cannot add this person to these campaigns."))
            return self.form_invalid(form)
        messages.success(
            self.request,
            _("%(name)s can sign in now. Give them their password in person.")
            % {"name": person.get_username()},
        )
        return redirect("vouchers:person-detail", pk=person.pk)


class _PersonMixin(PortalPermissionMixin):
    permission_required = MANAGE_PEOPLE

    @cached_property
    def person(self):
        # Someone outside the admin's campaigns looks exactly like someone who does not exist.
        person = people_for(self.request.user).filter(pk=self.kwargs["pk"]).first()
        if person is None:
            raise Http404("No such person.")
        return person


@method_decorator(sensitive_post_parameters("password1", "password2"), name="dispatch")
class PersonDetailView(_PersonMixin, FormView):
    """The person, and the form giving them a new password (when the admin manages them)."""

    template_name = "vouchers/person_detail.html"
    form_class = PersonPasswordForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "person": self.person}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["person"] = self.person
        context["manageable"] = person_is_manageable(self.person)
        return context

    def form_valid(self, form):
        try:
            person_password_set(
                actor=self.request.user, person_id=self.person.pk, password=form.cleaned_data["password1"]
            )
        except PersonRefused:
            messages.error(self.request, _("You cannot change this person's password."))
            return self.form_invalid(form)
        messages.success(
            self.request,
            _("%(name)s has a new password; they were signed out everywhere.")
            % {"name": self.person.get_username()},
        )
        return redirect("vouchers:person-detail", pk=self.person.pk)


class PersonActiveView(_PersonMixin, View):
    """POST ``active=0`` deactivates, ``active=1`` reactivates."""

    def post(self, request, *args, **kwargs):
        active = request.POST.get("active") == "1"
        try:
            person_active_set(actor=request.user, person_id=self.person.pk, active=active)
        except PersonRefused:
            messages.error(request, _("You cannot change this person's access."))
            return redirect("vouchers:person-detail", pk=self.person.pk)
        if active:
            messages.success(request, _("%(name)s can sign in again.") % {"name": self.person.get_username()})
        else:
            messages.success(
                request,
                _("%(name)s is deactivated: they were signed out and cannot sign in.")
                % {"name": self.person.get_username()},
            )
        return redirect("vouchers:person-detail", pk=self.person.pk)
