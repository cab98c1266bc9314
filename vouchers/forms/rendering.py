"""The portal's form renderer: every form field is drawn by one template, templates/forms/field.html.

A page writes ``{{ form.amount.as_field_group }}`` (or ``{{ field.as_field_group }}`` in a loop)
and gets the label, the widget, the help text and the errors, wired together with ids that
Django's ``aria-describedby`` on the widget points at (``<id>_helptext``, ``<id>_error``).
A form whose optional fields are marked "(optional)" sets ``mark_optional = True``.
"""

from __future__ import annotations

from django.forms.renderers import TemplatesSetting


class PortalFormRenderer(TemplatesSetting):
    """Form templates come from the project's TEMPLATES (so templates/ can hold them);
    Django's own widget templates from the ``django.forms`` app."""

    field_template_name = "forms/field.html"
