"""Money, amounts and stored messages as the current language writes them.

One place decides how an amount with its currency looks: ``1.234,50 €`` in German, ``1,234.50 €`` in English
(the amount first in both, as on the tills' receipts). Django's localisation supplies the decimal
and thousands separators; the number of decimal places is always 2.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django.utils import numberformat
from django.utils.formats import get_format
from django.utils.translation import gettext, pgettext

# An amount with thousands separators *and* a decimal part, as the pages show it: "1.234,50"
# (German) or "1,234.50" (English). With both separators present nothing is ambiguous.
_GROUPED = re.compile(r"^(?P<int>[0-9]{1,3}(?:(?P<sep>[.,])[0-9]{3})+)(?P<dec>[.,])(?P<frac>[0-9]{1,2})$")


def strip_grouping(text: str) -> str:
    """ "1.234,50" / "1,234.50" → "1234.50"; any other text is returned unchanged."""
    match = _GROUPED.match(text)
    if match is None or match["sep"] == match["dec"]:
        return text
    return f"{match['int'].replace(match['sep'], '')}.{match['frac']}"


def format_amount(value, *, grouping: bool = True, decimals: int | None = 2) -> str:
    """``value`` with two decimals and the current language's separators; "" when not a number.

    ``grouping=False`` leaves out the thousands separators: for prefilled input fields.
    ``decimals=None`` keeps the value's own decimals (Allsafe denominations such as "100").
    """
    if value is None or value == "" or isinstance(value, bool):
        return ""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return str(value)
    if not number.is_finite():
        return str(value)
    if decimals is not None:
        number = number.quantize(Decimal(1).scaleb(-decimals))
    return numberformat.format(
        number,
        get_format("DECIMAL_SEPARATOR"),
        decimal_pos=decimals,
        grouping=get_format("NUMBER_GROUPING"),
        thousand_sep=get_format("THOUSAND_SEPARATOR"),
        force_grouping=grouping,
        use_l10n=True,
    )


CURRENCY_EUR = "EUR"
CURRENCY_ZAR = "ZAR"


def format_money(value, currency: str = CURRENCY_EUR, *, decimals: int | None = 2) -> str:
    """An amount with its currency in the current language; "" for no value.

    Euro: ``1.234,50 €`` (de) or ``1,234.50 €`` (en), as on the tills' receipts. Rand (Allsafe):
    ``R 1.234,50`` / ``R 1,234.50``, the sign first as South African shops write it. Any other
    ISO code is written after the amount. Every amount a page, filter or CSV shows goes through
    here with the campaign's currency (``Campaign.currency``), so rand and euro never share a
    column unmarked.
    """
    amount = format_amount(value, decimals=decimals)
    if not amount:
        return ""
    if currency == CURRENCY_EUR:
        # Translators: where the euro sign goes around an amount; keep %(amount)s.
        return pgettext("money", "%(amount)s €") % {"amount": amount}
    if currency == CURRENCY_ZAR:
        # Translators: where the rand sign goes around an amount; keep %(amount)s.
        return pgettext("money", "R %(amount)s") % {"amount": amount}
    return f"{amount} {currency}"


class MoneyParam:
    """An amount as a message parameter: a form's message writes it in the language active when
    it is shown; ``staff_text.stored_errors`` keeps it as an amount (``stored_money``), so a stored
    message writes it in its reader's language, not the writer's."""

    def __init__(self, value, currency: str = CURRENCY_EUR):
        self.value = value
        self.currency = currency

    def __str__(self) -> str:
        return format_money(self.value, self.currency)


def translate_stored(text) -> str:
    """A message stored in the database, translated when it is one of the catalogue's sentences.

    Background jobs run in the default language (English) and store what they tell people (alert
    texts, what-to-check lists, error messages). A stored sentence that is a catalogue entry is
    shown in the reader's language; anything else (a provider's own reason, a note a person typed,
    a sentence with figures in it) is shown as it was stored.
    """
    if text is None:
        return ""
    text = str(text)
    # gettext("") would return the catalogue's header.
    return gettext(text) if text.strip() else text
