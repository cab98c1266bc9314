"""Plain-words messages for staff: one catalogue, wrapped for translation (English source text).

Provider errors are explained by class (ARCHITECTURE.md, "Provider errors"): rejections show
the provider's own reason, everything else gets a sentence that says what happened, whether
anything changed and what to do next. Details for engineers go to the log, never to the page.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from django.conf import settings
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..providers import errors

# --- Input at the desk ----------------------------------------------------------------------
CODE_REQUIRED = gettext_lazy("Scan or type the code of the token.")
CODE_NOT_ASCII = gettext_lazy("The code may only contain the letters A to Z and the digits 0 to 9.")
CODE_BAD_LENGTH = gettext_lazy("A token code has 16 characters; this one has %(length)d.")
AMOUNT_REQUIRED = gettext_lazy("Enter the amount to redeem.")
AMOUNT_NOT_A_NUMBER = gettext_lazy("Enter the amount as a number, for example 12.50 or 12,50.")
AMOUNT_AMBIGUOUS = gettext_lazy(
    "“%(value)s” is ambiguous: use a comma or a dot for the cents only, for example 12,50."
)
AMOUNT_NOT_POSITIVE = gettext_lazy("The amount must be more than 0.")
AMOUNT_TOO_PRECISE = gettext_lazy("The amount can have at most 2 decimal places.")
AMOUNT_TOO_LARGE = gettext_lazy("The amount is more than the remaining value of %(remaining)s.")
AMOUNT_MUST_BE_FULL = gettext_lazy(
    "This token can only be redeemed in full: the amount must be %(remaining)s."
)
TOKEN_NOT_VALID = gettext_lazy("This token is not valid and cannot be redeemed.")
TOKEN_EXPIRED = gettext_lazy("This token expired on %(date)s and cannot be redeemed.")
TOKEN_USED_UP = gettext_lazy("Nothing is left on this token.")
CHECK_FIRST = gettext_lazy("Check the code again before redeeming: this form is out of date.")
BALANCE_CHANGED = gettext_lazy(
    "The balance of this token changed since it was checked. Check the code again."
)
CODE_BUSY = gettext_lazy(
    "This token is being redeemed elsewhere right now. Wait until that redemption is finished, "
    "then check the code again."
)
FORM_USED = gettext_lazy("This form was already used. Check the code again.")
LOOKUP_UNAVAILABLE = gettext_lazy(
    "Code checks are paused: the portal's shared cache cannot be reached. Nothing was checked or "
    "changed; try again in a moment."
)
CAMPAIGN_NOT_LIVE = gettext_lazy("This campaign is switched off or outside its dates; nothing was done.")
CAMPAIGN_NOT_LINA = gettext_lazy("Tokens can only be checked in LINA campaigns.")

# --- Outcome of a redemption ----------------------------------------------------------------
OUTCOME_UNKNOWN = gettext_lazy(
    "The outcome of this redemption is not known yet. Do not hand over goods yet. "
    "The portal is checking the token's balance with the provider; this page updates itself."
)
NOT_REDEEMED_SETTLED = gettext_lazy(
    "LINA did not redeem this token: its balance is unchanged. Do not hand over goods; scan the "
    "token again to try once more."
)
NEEDS_REVIEW = gettext_lazy(
    "The outcome of this redemption could not be settled automatically. Do not hand over goods; "
    "ask a campaign admin to look at it."
)


def retry_time(retry_at: datetime | None) -> str:
    """A local clock time (or date and time when not today) for "try again at …"."""
    if retry_at is None:
        return ""
    local = timezone.localtime(retry_at) if timezone.is_aware(retry_at) else retry_at
    if local.date() == timezone.localdate():
        return formats.time_format(local, "TIME_FORMAT")
    return formats.date_format(local, "SHORT_DATETIME_FORMAT")


def lookup_throttled_text(retry_after_seconds: int) -> str:
    """Too many code checks from this user or till: how long to wait, in whole seconds/minutes."""
    if retry_after_seconds < 90:
        return _("Too many code checks in a short time. Wait %(seconds)d seconds, then scan again.") % {
            "seconds": retry_after_seconds
        }
    return _("Too many code checks in a short time. Wait %(minutes)d minutes, then scan again.") % {
        "minutes": -(-retry_after_seconds // 60)
    }


def provider_error_text(error: errors.ProviderError, *, money_moving: bool = False) -> str:
    """One sentence (or two) for staff about ``error``; says whether anything changed."""
    if isinstance(error, errors.RedeemRefused):
        return _("The provider refused to redeem this token: %(reason)s") % {"reason": error.message}
    if isinstance(error, errors.TokenInvalid):
        return _("The provider says this code is not a valid token: %(reason)s") % {"reason": error.message}
    if isinstance(error, errors.Rejected):
        return _("The provider refused the request: %(reason)s") % {"reason": error.message}
    if isinstance(error, errors.CallBudgetSpent):
        when = retry_time(error.retry_at)
        if when:
            return _(
                "Too many calls to LINA failed in the last minute (from any till of this shop). "
                "The portal pauses calls so LINA does not lock the whole shop out. Nothing was "
                "changed. Try again after %(time)s."
            ) % {"time": when}
        return _(
            "Too many calls to LINA failed in the last minute (from any till of this shop). "
            "The portal pauses calls so LINA does not lock the whole shop out. Nothing was "
            "changed. Try again in a minute."
        )
    if isinstance(error, errors.RateLimited):
        when = retry_time(error.retry_at)
        if when:
            return _(
                "The provider is refusing calls for this campaign after too many failed attempts. "
                "Nothing was changed. Try again after %(time)s."
            ) % {"time": when}
        return _(
            "The provider is refusing calls for this campaign after too many failed attempts. "
            "Nothing was changed. Try again in a few minutes."
        )
    if isinstance(error, errors.OutcomeUnknown):
        if money_moving:
            return str(OUTCOME_UNKNOWN)
        return _("The provider did not answer in time. Nothing was changed; try again in a moment.")
    if isinstance(error, errors.ProviderMaintenance):
        return _("LINA is in maintenance. Nothing was changed; try again later.")
    if isinstance(error, errors.ProviderUnavailable):
        return _("The provider could not be reached. Nothing was changed; try again in a moment.")
    if isinstance(error, errors.SessionRejected):
        return _(
            "LINA rejected the session again right after a fresh login. Nothing was changed. "
            "Ask a campaign admin to test the campaign's connection."
        )
    if isinstance(error, errors.AuthFailed):
        return _(
            "The provider did not accept this campaign's credentials. Nothing was changed. "
            "Ask a campaign admin to test the campaign's connection."
        )
    if isinstance(error, errors.Misconfigured):
        return _(
            "This campaign is not set up correctly for its provider. Nothing was changed. "
            "Ask a campaign admin to check the campaign's settings."
        )
    if isinstance(error, errors.ValidationFailed):
        return _(
            "The provider rejected the request as malformed. Nothing was changed. "
            "Ask a campaign admin to check the campaign's settings."
        )
    return _("The provider reported a problem. Nothing was changed; try again in a moment.")


def check_error_text(error: errors.ProviderError) -> str:
    """Why a check at the desk gave no answer. A check moves no money, so a read timeout is a
    plain "no answer, nothing changed" (the check's short read timeout is the till's wait)."""
    if isinstance(error, errors.OutcomeUnknown):
        return _(
            "LINA did not answer in time. Nothing was changed; scan the code again "
            "(the desk waits %(seconds)s seconds for a check)."
        ) % {"seconds": formats.number_format(settings.LINA_CHECK_READ_TIMEOUT)}
    return provider_error_text(error)


def operation_error_text(operation) -> str:
    """The plain-words reason a recorded operation failed, from its error columns."""
    code = operation.error_code
    if code == "OutcomeUnknown" and operation.state == "failed":
        # The outcome was unknown once, then settled as "not redeemed" (balance unchanged): the
        # page says that, never the "outcome unknown" warning of the call it started with.
        return str(NOT_REDEEMED_SETTLED) if operation.kind == "redeem" else _("It did not go through.")
    if code == "CodeBusy":
        return str(CODE_BUSY)
    if code == "BalanceChanged":
        return str(BALANCE_CHANGED)
    error_class = getattr(errors, code, None) if code else None
    if not (isinstance(error_class, type) and issubclass(error_class, errors.ProviderError)):
        return operation.error_message or _("The operation did not go through.")
    kwargs = {}
    if issubclass(error_class, errors.RateLimited):
        retry_at = (operation.response_data or {}).get("retry_at")
        if retry_at:
            with contextlib.suppress(ValueError):
                kwargs["retry_at"] = datetime.fromisoformat(retry_at)
    error = error_class(operation.error_message or None, **kwargs)
    return provider_error_text(error, money_moving=operation.kind in ("redeem", "purchase", "allocate"))
