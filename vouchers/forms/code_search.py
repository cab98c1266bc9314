"""The search by a typed full code, shared by the sales list and the ledger.

Posted, never put in a URL: a full code in a query string would end up in access logs and
browser history. The view looks the code up by its keyed digest (views/code_search.py).
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from ..values.codes import is_plausible_code, normalize_code


class CodeSearchForm(forms.Form):
    code = forms.CharField(
        label=_("Full code"),
        max_length=80,
        help_text=_("A gift token code or a voucher PIN; spaces, dashes and case do not matter."),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "class": "code",
                "size": 24,
            }
        ),
    )

    def clean_code(self) -> str:
        code = normalize_code(self.cleaned_data["code"])
        if not is_plausible_code(code):
            raise ValidationError(_("A code has only letters and digits (spaces and dashes are ignored)."))
        return code
