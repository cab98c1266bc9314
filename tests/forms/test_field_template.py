"""One template draws every form field (the form renderer): label, widget, help, errors, wired
with the ids the widget's aria-describedby names."""

from __future__ import annotations

import re
from pathlib import Path

from django import forms
from django.conf import settings

from vouchers.forms.login import PortalPasswordResetForm

TEMPLATES = Path(settings.BASE_DIR) / "templates"


class MarkedForm(forms.Form):
    mark_optional = True

    amount = forms.DecimalField(label="Amount", help_text="Between 5 and 500.")
    note = forms.CharField(label="Note", required=False)


def test_help_and_errors_carry_the_ids_aria_describedby_names():
    form = MarkedForm(data={"amount": "abc"})
    html = form["amount"].as_field_group()
    described = re.search(r'aria-describedby="([^"]+)"', html).group(1).split()
    assert described == ["id_amount_helptext", "id_amount_error"]
    assert 'id="id_amount_helptext"' in html and 'id="id_amount_error"' in html
    assert 'class="field field-error"' in html and 'aria-invalid="true"' in html
    assert '<label for="id_amount">Amount</label>' in html


def test_optional_fields_are_marked_only_where_the_form_asks():
    assert "(optional)" in MarkedForm()["note"].as_field_group()
    assert "(optional)" not in MarkedForm()["amount"].as_field_group()
    assert "(optional)" not in PortalPasswordResetForm()["email"].as_field_group()


def test_no_page_template_repeats_the_field_markup():
    """Pages use ``{{ field.as_field_group }}``; the markup lives in templates/forms/field.html."""
    repeated = [
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*.html")
        if path != TEMPLATES / "forms" / "field.html" and 'class="field' in path.read_text(encoding="utf-8")
    ]
    assert repeated == []
