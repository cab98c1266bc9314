"""The portal's one "no" to staff. Services raise :class:`Refusal` for their own rules and turn
provider errors into one at their edge (:func:`refusal_for`), so views, forms and tasks catch
this one type and never import ``vouchers.providers``.
"""

from __future__ import annotations

from .. import staff_text
from ..providers.errors import ProviderError


class Refusal(Exception):
    """Refused, with a message safe to show staff. ``field``: the form field (None: the form);
    ``code``: a stable name (the ledger's error code); ``by_provider``: the provider said no or
    could not be used; ``operation``: the ledger row that records it; ``retry_after``: seconds
    until trying again makes sense; ``detail``: for the log only."""

    def __init__(
        self,
        message,
        *,
        field: str | None = None,
        code: str = "",
        what_to_check=(),
        by_provider: bool = False,
        operation=None,
        retry_after: int | None = None,
        detail: str = "",
    ):
        self.message = str(message)
        # As raised (a lazy catalogue sentence, usually): stored_sentence keeps it in English,
        # whatever language the refusal happened in, so it is shown in the reader's language.
        self.sentence = message
        self.field = field
        self.code = code
        self.what_to_check = [str(item) for item in what_to_check]
        self.by_provider = by_provider
        self.operation = operation
        self.retry_after = retry_after
        self.detail = detail
        super().__init__(self.message)


def refusal_for(error: ProviderError, *, money_moving: bool = False, message: str = "") -> Refusal:
    """The provider's error as staff see it (the catalogue's words; ``message`` replaces them)."""
    told = staff_text.told_staff(error, money_moving=money_moving)
    return Refusal(
        message or told["message"],
        code=error.code,
        what_to_check=told["checks"],
        by_provider=True,
        detail=error.detail,
    )
