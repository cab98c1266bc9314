"""One error tree for both providers (ARCHITECTURE.md, "Provider errors").

Each provider maps its answers to these classes in one place, by HTTP status code or by field
value, never by reason text. ``message`` is written for staff and safe to show; ``what_to_check``
lists what a person can look at; ``detail`` is for the log only (it may hold a body excerpt, never
a secret). Money-moving operations are never retried on any of these.
"""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext_lazy as _


class ProviderError(Exception):
    """Base of every provider error."""

    default_message = _("The provider reported a problem.")
    #: Reads (availability, ping, checkcode) may be retried with backoff on this error.
    retry_safe_for_reads = False

    def __init__(
        self,
        message: str | None = None,
        *,
        what_to_check: list[str] | tuple[str, ...] = (),
        status_code: int | None = None,
        detail: str = "",
        raw: object = None,
    ):
        self.message = str(message) if message else str(self.default_message)
        # As raised (a lazy catalogue sentence, usually): what is stored for people to read later
        # keeps it in its English source form and shows it in the reader's language.
        self.message_source = message if message else self.default_message
        self.what_to_check = [str(item) for item in what_to_check]
        self.what_to_check_source = list(what_to_check)  # as raised, like ``message_source``
        self.status_code = status_code
        self.detail = detail
        self.raw = raw
        super().__init__(self.message)

    @property
    def code(self) -> str:
        """A stable name for the ledger's error column."""
        return type(self).__name__


class ProviderUnavailable(ProviderError):
    """Nothing was changed: the request was never sent (could not connect, DNS, TLS), LINA is in
    Maintenance, or a READ got a 5xx, an HTML or non-JSON body. For money-moving calls a 5xx or
    an unreadable answer is :class:`OutcomeUnknown` instead, since it may follow the provider's
    action."""

    default_message = _("The provider could not be reached. Nothing was changed; try again in a moment.")
    retry_safe_for_reads = True


class ProviderMaintenance(ProviderUnavailable):
    """LINA answered ``status: Maintenance`` (or the old ``Maintanance``): nothing was done."""

    default_message = _("LINA is in maintenance. Nothing was changed; try again later.")


class OutcomeUnknown(ProviderError):
    """The request may have reached the provider but no usable answer came back.

    Raised on a read timeout or a connection dropped after sending, and for a money-moving call
    (redeem, purchase, allocate) also on any 5xx, an HTML page or a body that is not a readable
    answer, unless the status is one the provider documents as a definite "no" (Allsafe's 401,
    491, 492, 495, 496). For money-moving calls the operation must be reconciled, never sent again.
    """

    default_message = _(
        "The provider did not answer in time. It is not known whether the operation went through."
    )


class RateLimited(ProviderError):
    """LINA answered DENIED (too many failed calls): no call to this campaign until ``retry_at``."""

    default_message = _("The provider is refusing calls for a while after too many failed attempts.")

    def __init__(self, message: str | None = None, *, retry_at: datetime | None = None, **kwargs):
        self.retry_at = retry_at
        super().__init__(message, **kwargs)


class CallBudgetSpent(RateLimited):
    """The portal's own budget of failed LINA calls for one account is used up: no call until
    ``retry_at``, so LINA's DENIED lock-out (counted per calling address) never hits the shop."""

    default_message = _("Too many failed calls to the provider in a short time.")


class AuthFailed(ProviderError):
    """Allsafe 401; LINA login refused (also after one fresh login)."""

    default_message = _("The provider did not accept the campaign's credentials.")


class SessionRejected(AuthFailed):
    """LINA rejected the session hash again right after a fresh login (the login itself works)."""

    default_message = _("LINA rejected the session again right after a fresh login. Nothing was changed.")


class Misconfigured(ProviderError):
    """Allsafe 491 (no vault linked), missing credentials or settings on our side."""

    default_message = _("The campaign is not set up correctly for this provider.")


class Rejected(ProviderError):
    """A definite "no" from the provider, with a reason safe to show staff."""

    default_message = _("The provider refused the request.")


class OutOfStock(Rejected):
    """Allsafe 492: no voucher left for this vendor and value."""

    default_message = _("There are no vouchers left for this vendor and value.")


class InvalidVendor(Rejected):
    """Allsafe 496: the vendor name is unknown to Allsafe."""

    default_message = _("The provider does not know this vendor.")


class TokenInvalid(Rejected):
    """LINA: the token does not exist, is used up or is not valid."""

    default_message = _("This code is not a valid token.")


class RedeemRefused(Rejected):
    """LINA redeem answered ``resp: Err``; the provider's ``msg`` says why."""

    default_message = _("The provider refused to redeem this token.")


class ValidationFailed(ProviderError):
    """Allsafe 495; LINA ``status: error`` on a request we built: a bug or a bad setting."""

    default_message = _("The provider rejected the request as malformed. Check the campaign's settings.")


class UnexpectedAnswer(ProviderUnavailable):
    """The provider answered a READ, but not in a shape we can read (not JSON, a field of the
    wrong type). The same answer to a money-moving call is :class:`OutcomeUnknown`
    (``providers.http.unusable_answer`` decides).

    A kind of :class:`ProviderUnavailable`: the staff message stays generic, the body excerpt goes
    to the log only (in ``detail``, redacted).
    """

    default_message = _("The provider sent an answer the portal cannot read. Try again in a moment.")
