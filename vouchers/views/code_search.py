"""POST a full code, back to a list opened on the reference of the newest record with that code.

Shared by the sales list and the ledger. The code is posted, so it is in no URL, access log or
browser history; the list is opened with a reference (a pk) whose stored digest its filter
compares, and the lookup is scoped to the viewer's campaigns like the list itself.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.views import View

from ..forms.code_search import CodeSearchForm
from .base import PortalPermissionMixin


class CodeSearchView(PortalPermissionMixin, View):
    """Subclasses name the list, its reference parameter, the not-found text and ``find``."""

    http_method_names = ["post"]
    list_url_name: str
    reference_param: str
    not_found_message: str  # lazy text, rendered in the viewer's language

    def find(self, user, code: str) -> int | None:
        """The pk of the newest record of ``user``'s campaigns with ``code`` (normalised), or None."""
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        form = CodeSearchForm(request.POST)
        list_url = reverse(self.list_url_name)
        if not form.is_valid():
            messages.error(request, " ".join(form.errors.get("code", [])))
            return redirect(list_url)
        pk = self.find(request.user, form.cleaned_data["code"])
        if pk is None:
            messages.warning(request, str(self.not_found_message))
            return redirect(list_url)
        return redirect(list_url + "?" + urlencode({self.reference_param: pk}))
