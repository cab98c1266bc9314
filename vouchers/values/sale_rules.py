"""The rules a gift-token sale must meet, shared by the sell form and the bulk-sale upload.

Each rule raises django.core.exceptions.ValidationError with a message for staff, so the form
shows it next to its field and the bulk preview next to its line.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

# Lazy, with the figures as params: a form shows the sentence at once, a bulk upload stores it
# (staff_text.stored_errors) and shows it later in the reader's language.
from django.utils.translation import gettext_lazy as _

from ..models import Campaign, SaleTemplate
from .formatting import MoneyParam

NAME_MAX_LENGTH = 100


def check_amount(campaign: Campaign, amount: Decimal) -> Decimal:
    # The range first: quantizing an absurdly large number would itself fail.
    if amount < campaign.sale_min_amount or amount > campaign.sale_max_amount:
        raise ValidationError(
            _("The amount must be between %(min)s and %(max)s for this campaign."),
            params={
                "min": MoneyParam(campaign.sale_min_amount, campaign.currency),
                "max": MoneyParam(campaign.sale_max_amount, campaign.currency),
            },
        )
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationError(_("Use at most 2 decimal places."))
    return amount.quantize(Decimal("0.01"))


def parse_layout(raw) -> int | None:
    text = str(raw if raw is not None else "").strip()
    if text in ("", "0"):
        return None
    try:
        layout = int(text)
    except ValueError:
        raise ValidationError(
            _("The layout must be a layout number, not “%(value)s”."), params={"value": raw}
        ) from None
    if layout < 0:
        raise ValidationError(
            _("The layout must be a layout number, not “%(value)s”."), params={"value": raw}
        )
    return layout or None


def check_layout(template: SaleTemplate, layout: int | None) -> int | None:
    if layout is None:
        return None
    if layout not in template.layouts:
        if template.layouts:
            allowed = ", ".join(str(n) for n in template.layouts)
            raise ValidationError(
                _("Layout %(layout)s is not allowed for template “%(template)s” (allowed: %(allowed)s)."),
                params={"layout": layout, "template": template.name, "allowed": allowed},
            )
        raise ValidationError(
            _("Template “%(template)s” has no layouts; leave the layout empty."),
            params={"template": template.name},
        )
    return layout


def check_names(layout: int | None, from_name: str, for_name: str) -> tuple[str, str]:
    """From/for names are printed on a layout only, so they are refused without one."""
    from_name, for_name = (from_name or "").strip(), (for_name or "").strip()
    if layout is None and (from_name or for_name):
        raise ValidationError(
            _("From/for names are printed on a layout only: choose a layout or leave the names empty.")
        )
    for name in (from_name, for_name):
        if len(name) > NAME_MAX_LENGTH:
            raise ValidationError(
                _("Names can be at most %(max)d characters long."), params={"max": NAME_MAX_LENGTH}
            )
        if any(ord(ch) < 32 for ch in name):
            raise ValidationError(_("Names cannot contain control characters."))
    return from_name, for_name


def check_email(raw: str) -> str:
    email = (raw or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationError(
                _("“%(value)s” is not a valid e-mail address."), params={"value": raw}
            ) from None
    return email
