"""Settle a sale whose answer was lost, with evidence (services/sale_resolution.py).

A gift token takes two posts: "check" asks LINA about the code and shows its value and validity;
"confirm" records it. Everything else is one post.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.generic import FormView

from ..forms.sale_resolution import NOT_SOLD, SaleResolveForm
from ..services import sale_resolution as service
from ..services.refusals import Refusal
from .sales import VIEW_SALES, SaleScopedMixin

RESOLVE = "vouchers.resolve_operations"


class SaleResolveView(SaleScopedMixin, FormView):
    permission_required = (VIEW_SALES, RESOLVE)
    template_name = "vouchers/sale_resolve.html"
    form_class = SaleResolveForm

    def dispatch(self, request, *args, **kwargs):
        allowed = request.user.is_authenticated and request.user.has_perms(self.get_permission_required())
        if allowed and not service.sale_resolvable(self.sale):  # scoped first: other campaigns 404
            raise Http404("This sale has nothing to settle.")
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "sale": self.sale}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["sale"] = self.sale
        context.setdefault("card", None)
        return context

    def form_valid(self, form):
        data, sale, user = form.cleaned_data, self.sale, self.request.user
        confirming = self.request.POST.get("step") == "confirm"
        try:
            if data["outcome"] == NOT_SOLD:
                service.sale_resolve_not_sold(sale=sale, actor=user, reason=data["reason"])
            elif not sale.is_gift_token:
                service.sale_resolve_allocated(
                    sale=sale,
                    actor=user,
                    pin=data["pin"],
                    serial=data["serial"],
                    expiry=data["expiry"],
                    reason=data["reason"],
                )
            elif confirming:
                service.sale_resolve_sold(
                    sale=sale,
                    actor=user,
                    code=data["code"],
                    check_operation_id=data["check"],
                    reason=data["reason"],
                )
            else:
                card = service.sale_evidence_check(sale=sale, user=user, code=data["code"])
                return self.render_to_response(self.get_context_data(form=form, card=card))
        except Refusal as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            return self.form_invalid(form)
        messages.success(self.request, _("Sale #%(pk)s is settled.") % {"pk": sale.pk})
        return redirect("vouchers:sale-detail", pk=sale.pk)
