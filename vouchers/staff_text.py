"""Everything staff are told, in one catalogue, wrapped for translation (English source text).

Input rules, outcomes, and every provider error: a rejection shows the provider's reason, the
rest says what happened, whether anything changed and what to do, with a "what to check" list.
Allsafe's status codes (providers.md) are explained here once, for the adapter, the sale pages
and the stock alerts. A leaf module (Django and the error tree only): any layer may use it.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext_lazy

from .providers import errors
from .values.formatting import CURRENCY_EUR, MoneyParam, format_money

# --- Input at the desk ----------------------------------------------------------------------
CODE_REQUIRED = gettext_lazy("Scan or type the code of the token.")
CODE_NOT_ASCII = gettext_lazy("The code may only contain the letters A to Z and the digits 0 to 9.")
CODE_BAD_LENGTH = gettext_lazy("A token code has 16 characters; this one has %(length)d.")
AMOUNT_REQUIRED = gettext_lazy("Enter the amount to redeem.")
AMOUNT_NOT_A_NUMBER = gettext_lazy(
    "“%(value)s” is not an amount: enter the amount as a number, for example 12.50 or 12,50."
)
AMOUNT_AMBIGUOUS = gettext_lazy(
    "“%(value)s” is ambiguous: an amount has at most 2 decimal places; use a comma or a dot for "
    "the cents only, for example 12,50."
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

# --- Sales ---------------------------------------------------------------------------------
WRONG_PROVIDER = gettext_lazy("This campaign does not use that provider.")
SALE_CAMPAIGN_NOT_LIVE = gettext_lazy(
    "The campaign is not live (switched off or outside its dates). Nothing was sold."
)
SALE_FORM_USED = gettext_lazy("This form was already used for something else. Open it again.")
# "Send to the customer again" (services/sale_mail.py)
SALE_EMAIL_NOT_A_TOKEN = gettext_lazy(
    "Only gift tokens are e-mailed; digital vouchers have no e-mail address."
)
SALE_EMAIL_NOT_SOLD = gettext_lazy("This sale did not go through, so there is no token to e-mail.")
SALE_EMAIL_NO_ADDRESS = gettext_lazy("This sale has no e-mail address, so there is nobody to send it to.")
SALE_EMAIL_NO_CODE = gettext_lazy(
    "The full code cannot be decrypted with the configured keys (FIELD_ENCRYPTION_KEYS), so nothing was sent."
)
SALE_EMAIL_JUST_SENT = gettext_lazy(
    "This token was e-mailed less than a minute ago; it was not sent again. Wait a minute if it really "
    "has to go out once more."
)
SALE_EMAIL_FAILED = gettext_lazy(
    "The e-mail could not be sent: the mail server did not accept it. Nothing was sent."
)
SALE_EMAIL_REFUSED = gettext_lazy(
    "The e-mail could not be sent: the mail server refused the address %(email)s. Nothing was sent."
)
SALE_EMAIL_FAILED_CHECKS = (
    gettext_lazy(
        "Check the portal's e-mail settings (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_USE_TLS)."
    ),
    gettext_lazy("Check that the mail server can be reached from the portal, then try again."),
)
SALE_EMAIL_REFUSED_CHECKS = (gettext_lazy("Check the customer's e-mail address on the sale."),)
SALE_EMAIL_SENT = gettext_lazy("The gift token was e-mailed to %(email)s.")
CREDENTIALS_UNREADABLE = gettext_lazy(
    "The campaign's stored credentials cannot be decrypted, so no call was made."
)
CREDENTIALS_UNREADABLE_CHECKS = (
    gettext_lazy("Enter the campaign's API password and shared key again (the encryption keys changed)."),
    gettext_lazy("Or put the key they were encrypted with back into FIELD_ENCRYPTION_KEYS."),
)


# --- Audit summaries (stored with their figures, shown in the reader's language) --------------
AUDIT_CAMPAIGN_CREATED = gettext_lazy("Campaign %(campaign)s created")
AUDIT_CAMPAIGN_CHANGED = gettext_lazy("Campaign %(campaign)s changed")
AUDIT_CAMPAIGN_DELETED = gettext_lazy("Campaign %(campaign)s deleted")
AUDIT_CREDENTIALS_CHANGED = gettext_lazy("Credentials of %(campaign)s changed: %(fields)s")
AUDIT_ENDPOINT_MOVED = gettext_lazy("Base URL of %(campaign)s moved from %(old)s to %(new)s")
AUDIT_ENDPOINT_MOVED_CLEARED = gettext_lazy(
    "Base URL of %(campaign)s moved from %(old)s to %(new)s; stored %(cleared)s cleared"
)
AUDIT_MEMBER_ADDED = gettext_lazy("%(user)s added to %(campaign)s")
AUDIT_MEMBER_REMOVED = gettext_lazy("%(user)s removed from %(campaign)s")
AUDIT_CREDENTIALS_REENCRYPTED = gettext_lazy("Credentials of %(campaign)s re-encrypted with the newest key")
AUDIT_PERSON_CREATED = gettext_lazy("User %(user)s created as %(role)s for %(campaigns)s")
AUDIT_PERSON_PASSWORD_RESET = gettext_lazy("Password of %(user)s reset by a campaign admin")
AUDIT_PERSON_ACTIVATED = gettext_lazy("User %(user)s activated by a campaign admin")
AUDIT_PERSON_DEACTIVATED = gettext_lazy("User %(user)s deactivated by a campaign admin")

AUDIT_SALE_EMAIL_FAILED = gettext_lazy("Gift token %(code)s could not be e-mailed to %(email)s")
AUDIT_SALE_EMAILED = gettext_lazy("Gift token %(code)s e-mailed again to %(email)s")
AUDIT_SALE_TEMPLATE_CREATED = gettext_lazy("Sale template %(template)s created")
AUDIT_SALE_TEMPLATE_CHANGED = gettext_lazy("Sale template %(template)s changed")
AUDIT_SALE_TEMPLATE_DELETED = gettext_lazy("Sale template %(template)s deleted")
AUDIT_SALE_SETTLED_SOLD = gettext_lazy(
    "%(kind)s #%(sale)s settled by hand as sold: %(previous)s → succeeded, code %(code)s"
)
AUDIT_CONNECTION_TESTED_OK = gettext_lazy("Connection test of %(campaign)s (%(values)s values): ok")
AUDIT_CONNECTION_TESTED_FAILED = gettext_lazy("Connection test of %(campaign)s (%(values)s values): failed")
AUDIT_BULK_UPLOADED = gettext_lazy("Bulk sale file %(file)s uploaded: %(valid)s valid of %(rows)s rows")
AUDIT_BULK_QUEUE_FAILED = gettext_lazy("%(batch)s could not be queued (task queue unreachable); nothing sold")
AUDIT_BULK_CANCELLED = gettext_lazy("%(batch)s cancelled")
AUDIT_BULK_RESUMED = gettext_lazy("%(batch)s had stalled and was put back on the queue")
AUDIT_BULK_ROW_INTERRUPTED = gettext_lazy(
    "Bulk row interrupted, operation #%(operation)s needs review (never resent)"
)
AUDIT_BULK_STARTED = gettext_lazy("%(batch)s started")
AUDIT_BULK_STARTED_REPEATS = gettext_lazy("%(batch)s started, %(repeats)s repeated rows confirmed")
AUDIT_BULK_RESUMED_BY_HAND = gettext_lazy("%(batch)s resumed")
AUDIT_USER_CREATED = gettext_lazy("User %(user)s created")
AUDIT_USER_CHANGED = gettext_lazy("User %(user)s changed: %(fields)s")
AUDIT_USER_ACTIVATED = gettext_lazy("User %(user)s activated")
AUDIT_USER_DEACTIVATED = gettext_lazy("User %(user)s deactivated")
AUDIT_USER_GROUPS_CHANGED = gettext_lazy("Groups of %(user)s changed: %(changes)s")
AUDIT_USER_PERMISSIONS_CHANGED = gettext_lazy("Permissions of %(user)s changed: %(changes)s")
AUDIT_PASSWORD_CHANGED_BY_ADMIN = gettext_lazy("Password of %(user)s changed by an admin")
AUDIT_PASSWORD_DISABLED_BY_ADMIN = gettext_lazy("Password of %(user)s disabled by an admin")
AUDIT_PASSWORD_CHANGED_BY_SELF = gettext_lazy("Password of %(user)s changed by themselves")
AUDIT_USER_DELETED = gettext_lazy("User %(user)s deleted")
AUDIT_GROUP_CREATED = gettext_lazy("Group %(group)s created")
AUDIT_GROUP_RENAMED = gettext_lazy("Group %(old)s renamed to %(group)s")
AUDIT_GROUP_PERMISSIONS_CHANGED = gettext_lazy("Permissions of group %(group)s changed")
AUDIT_GROUP_DELETED = gettext_lazy("Group %(group)s deleted")
AUDIT_RESET_LINK_MAILED = gettext_lazy("Password reset link mailed to %(user)s")
AUDIT_PASSWORD_RESET_BY_LINK = gettext_lazy("Password of %(user)s reset by e-mail link")
AUDIT_OPERATION_RECONCILED = gettext_lazy("%(kind)s #%(pk)s on %(code)s reconciled: %(state)s")
AUDIT_OPERATION_INTERRUPTED = gettext_lazy("%(kind)s #%(pk)s never finished: %(state)s")
AUDIT_THRESHOLDS_CHANGED = gettext_lazy("Low-stock thresholds of %(campaign)s changed")
AUDIT_REDEEM = gettext_lazy("Redeem of %(amount)s on %(code)s: %(state)s")
# Sales (services/sales.py ``_finish``): amounts with their currency, in the reader's format.
AUDIT_GIFT_TOKEN_SOLD = gettext_lazy("Gift token %(code)s sold for %(amount)s")
AUDIT_VOUCHER_ALLOCATED = gettext_lazy("%(vendor)s voucher of %(value)s allocated")
AUDIT_SALE_FAILED = gettext_lazy("%(kind)s #%(sale)s failed: %(error)s")
AUDIT_SALE_NEEDS_REVIEW = gettext_lazy("%(kind)s #%(sale)s: answer lost, needs review (never resent)")
AUDIT_ANSWER_LATE = gettext_lazy("%(summary)s (answer arrived after the operation was resolved)")
# Bulk batches ending (services/bulk_sales.py ``_bulk_finish``) and the note the batch page shows.
AUDIT_BULK_FINISHED = gettext_lazy("%(batch)s finished")
AUDIT_BULK_FINISHED_NOTE = gettext_lazy("%(batch)s finished: %(note)s")
AUDIT_BULK_CANCELLED_NOTE = gettext_lazy("%(batch)s cancelled: %(note)s")
BULK_NOTE_CANCELLED = gettext_lazy("Cancelled by a person.")
BULK_NOTE_STOPPED = gettext_lazy(
    "Stopped at line %(line)d: %(message)s Fix this, then resume to sell the rest."
)
# What happened to one bulk row (``BulkSaleRow.message_stored``); a failed row keeps what staff
# were told about the call (``told_stored``), the provider's own words labelled.
BULK_ROW_SOLD = gettext_lazy("Sold.")
BULK_ROW_NEEDS_REVIEW = gettext_lazy("The provider's answer was lost; needs review, not sent again.")
BULK_ROW_INTERRUPTED = gettext_lazy(
    "The job stopped during this sale; it needs review and is not sold again."
)
# Sessions ended because a person's rights changed (services/accounts.py ``user_sessions_end``).
SESSIONS_RIGHTS_CHANGED = gettext_lazy("rights changed: %(rights)s")
SESSIONS_PASSWORD_CHANGED_BY_ADMIN = gettext_lazy("password changed by an admin")
SESSIONS_PASSWORD_RESET_BY_CAMPAIGN_ADMIN = gettext_lazy("password reset by a campaign admin")
SESSIONS_DEACTIVATED_BY_CAMPAIGN_ADMIN = gettext_lazy("deactivated by a campaign admin")
SESSIONS_PASSWORD_RESET = gettext_lazy("password reset")
# A stale-stock alert (services/stock.py), rendered from the monitor's figures when read.
STALE_SINCE = gettext_lazy("No poll has succeeded since %(when)s; the stock shown may be out of date.")
STALE_NEVER = gettext_lazy("No poll has succeeded yet; there is no stock data for this campaign.")
STALE_LAST_ERROR = gettext_lazy("%(stale)s Last error: %(error)s")

# --- Allsafe's status codes (providers.md, "Status codes") -----------------------------------
ALLSAFE_STATUS: dict[int, tuple[object, tuple[object, ...]]] = {
    401: (
        gettext_lazy("Allsafe did not accept the campaign's credentials (HTTP 401)."),
        (
            gettext_lazy(
                "The API user name and password of the campaign, as issued in the Allsafe management portal."
            ),
            gettext_lazy(
                "Whether the campaign's integration was revoked: check the integration status in the "
                "Allsafe management portal."
            ),
            gettext_lazy(
                "Whether the campaign is still Live in Allsafe: check its status and its start and end dates."
            ),
        ),
    ),
    491: (
        gettext_lazy("No vault is linked to this campaign in Allsafe (HTTP 491)."),
        (gettext_lazy("Link a vault to the campaign in the Allsafe management portal."),),
    ),
    492: (
        gettext_lazy("Allsafe has no voucher for this vendor and value (HTTP 492)."),
        (
            gettext_lazy("Whether the vaults linked to the campaign still hold vouchers."),
            gettext_lazy(
                "Whether this vendor has vouchers of the requested value (a vendor/value mismatch)."
            ),
        ),
    ),
    495: (
        gettext_lazy("Allsafe rejected the request as malformed (HTTP 495)."),
        (
            gettext_lazy(
                "The request was malformed: a bug or a bad setting. Check the campaign's allocate path "
                "and field names."
            ),
        ),
    ),
    496: (
        gettext_lazy("Allsafe does not know this vendor (HTTP 496)."),
        (gettext_lazy("The vendor name: it must be spelled exactly as Allsafe knows it."),),
    ),
}
ALLSAFE_UNAVAILABLE = (
    gettext_lazy("Allsafe could not be reached or sent an unusable answer. Try again later."),
    (gettext_lazy("Try again later (reads are retried automatically; allocations never are)."),),
)
#: What to check for errors that are not an Allsafe status, by the ledger's error code.
_CHECKS_BY_CODE: dict[str, tuple[object, ...]] = {
    "AuthFailed": (
        gettext_lazy("The campaign's user name or password may be wrong."),
        gettext_lazy("The campaign's integration may have been revoked at the provider."),
    ),
    "Misconfigured": (gettext_lazy("The campaign's credentials or base URL may be missing in the portal."),),
    "ValidationFailed": (
        gettext_lazy(
            "Check the campaign's Allsafe allocate path and field names, or the LINA template hash and layout."
        ),
    ),
    "RateLimited": (
        gettext_lazy(
            "Too many failed calls: the provider refuses calls for a few minutes. Wait, then try again."
        ),
    ),
    "ProviderMaintenance": (gettext_lazy("LINA is in maintenance: nothing was sold. Try again later."),),
    "CallBudgetSpent": (
        gettext_lazy(
            "Too many failed calls to LINA in the last minute: the portal pauses calls. Wait, then try again."
        ),
    ),
    "ProviderUnavailable": (
        gettext_lazy("Try again in a moment; nothing was sold."),
        gettext_lazy("If it keeps failing, a campaign admin can run Test connection on the campaign."),
    ),
    "OutcomeUnknown": (
        gettext_lazy("The answer got lost: the provider may or may not have sold the voucher."),
        gettext_lazy(
            "Do not sell again for this request; an admin settles it in the review of open operations."
        ),
    ),
}


def allsafe_status(error: errors.ProviderError) -> int | None:
    """The documented Allsafe status behind ``error``, if it has one."""
    return error.status_code if error.status_code in ALLSAFE_STATUS else None


def what_to_check(error: errors.ProviderError) -> list[str]:
    """The checklist for ``error``: the adapter's own, else the catalogue's for its status or code."""
    if error.what_to_check:
        # As raised (lazy, usually): in the active language, English when stored (``told_staff``).
        return [str(item) for item in getattr(error, "what_to_check_source", None) or error.what_to_check]
    status = allsafe_status(error)
    if status is not None:
        return [str(item) for item in ALLSAFE_STATUS[status][1]]
    return [str(item) for item in _CHECKS_BY_CODE.get(error.code, ())]


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


# --- Stored messages: kept as a code and parameters, rendered when read ------------------------
# What the ledger and the audit trail keep for people to read later is written in whatever
# language the writer ran in (a job: English; a cashier: German). Kept as a code and its
# parameters, it is rendered in the *reader's* language. A parameter named ``provider_text`` is
# the provider's own words (LINA answers in German): never translated, always labelled as such.
STORED_MESSAGES = {
    "provider.redeem_refused": gettext_lazy("The provider refused to redeem this token: %(provider_text)s"),
    "provider.token_invalid": gettext_lazy(
        "The provider says this code is not a valid token: %(provider_text)s"
    ),
    "provider.rejected": gettext_lazy("The provider refused the request: %(provider_text)s"),
    "stock.alert_opened": gettext_lazy("%(kind)s alert opened for %(campaign)s: %(message)s"),
    "stock.alert_resolved": gettext_lazy("%(kind)s alert resolved for %(campaign)s: %(message)s"),
    "operation.resolved": gettext_lazy("%(kind)s #%(pk)s resolved by hand: %(previous)s → %(state)s"),
    "user.sessions_ended": ngettext_lazy(
        "%(count)d session of %(user)s ended: %(reason)s",
        "%(count)d sessions of %(user)s ended: %(reason)s",
        "count",
    ),
    "reconcile.no_answer": ngettext_lazy(
        "The balance could not be re-checked in %(attempts)d attempt.",
        "The balance could not be re-checked in %(attempts)d attempts.",
        "attempts",
    ),
}
#: How the provider's own words appear inside one of our sentences.
_PROVIDER_TEXT = gettext_lazy("“%(text)s” (the provider's own words)")


def stored(code: str, **params) -> dict:
    """A message to store: its code and JSON-safe parameters (nested stored messages allowed)."""
    return {"code": code, "params": params}


def stored_note(code: str, **params) -> dict:
    """A catalogue entry (``STORED_MESSAGES``) to store, with its English text like stored_sentence."""
    kept = stored(code, **params)
    with translation.override("en"):
        kept["text"] = render_stored(kept)
    return kept


def stored_sentence(sentence, **params) -> dict:
    """A catalogue sentence (a ``gettext_lazy`` value) to store: its English source text is the
    code, so it is rendered in the reader's language; ``text`` is the English rendering, kept for
    readers of the raw data (CSV, admin) and in case the catalogue ever loses the sentence."""
    kept = {"code": "msgid", "msgid": english(sentence), "params": params}
    with translation.override("en"):
        kept["text"] = render_stored(kept)
    return kept


def stored_money(value, currency: str = CURRENCY_EUR) -> dict:
    """An amount as a stored parameter: written with the reader's separators and its currency."""
    return {"money": f"{value:.2f}", "currency": currency}


def stored_datetime(value: datetime) -> dict:
    """A moment as a stored parameter: written in the reader's date format and time zone."""
    return {"datetime": value.isoformat()}


def _datetime_text(value: str) -> str:
    moment = datetime.fromisoformat(value)
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return formats.date_format(moment, "SHORT_DATETIME_FORMAT")


def told_stored(kept: dict | None) -> dict:
    """What staff were told (``told``: ``ProviderOperation.staff_text``) as a stored message to
    nest in another: its code and parameters when it has them, else its English catalogue text."""
    kept = kept or {}
    if kept.get("code"):
        nested = {"code": kept["code"], "params": kept.get("params") or {}}
        with translation.override("en"):  # ``message`` may be in the language the call ran in
            nested["text"] = render_stored(nested, kept.get("message", ""))
        return nested
    message = kept.get("message", "")
    return {"code": "msgid", "msgid": message, "params": {}, "text": message}


def error_stored(error: errors.ProviderError) -> dict:
    """A provider error's own message as a stored message: the provider's reason labelled as
    its own words, else the adapter's catalogue sentence in its English source form (the error
    keeps the sentence as raised), so it is shown in the reader's language."""
    rejection = provider_error_message(error)
    if rejection is not None:
        return stored_note(rejection["code"], **rejection["params"])
    return stored_sentence(getattr(error, "message_source", error.message))


def stored_errors(error) -> list[dict]:
    """Each message of a Django ``ValidationError`` as a stored sentence, with its parameters."""

    def kept(value):
        return stored_money(value.value, value.currency) if isinstance(value, MoneyParam) else value

    return [
        stored_sentence(e.message, **{name: kept(value) for name, value in (e.params or {}).items()})
        for e in error.error_list
    ]


def english(text) -> str:
    """``text`` (a lazy string, or a callable giving one) in its English source form, for storing."""
    with translation.override("en"):
        return str(text() if callable(text) else text)


def render_stored(message: dict | None, fallback: str = "") -> str:
    """A stored message in the active language; a row without a (known) code shows its text."""
    message = message or {}
    if message.get("code") == "msgid" and message.get("msgid"):
        template = _translated_text(message["msgid"])
    else:
        template = STORED_MESSAGES.get(message.get("code", ""))
    if template is None:
        return _translated_text(fallback)
    params = {}
    for name, value in (message.get("params") or {}).items():
        if isinstance(value, dict) and "code" in value:
            params[name] = render_stored(value, value.get("text", ""))
        elif isinstance(value, dict) and "money" in value:
            params[name] = format_money(value["money"], value.get("currency", CURRENCY_EUR))
        elif isinstance(value, dict) and "datetime" in value:
            params[name] = _datetime_text(value["datetime"])
        elif name == "provider_text":
            params[name] = _PROVIDER_TEXT % {"text": value}
        else:  # names, figures: as stored (a label to translate is passed as a stored sentence)
            params[name] = value
    try:
        # A catalogue entry is a lazy sentence: ``%`` picks the plural form from the count too.
        return str(template % params) if params else str(template)
    except (KeyError, TypeError, ValueError):
        return _translated_text(fallback)


def stored_display(value) -> str:
    """Any stored message for a reader: a stored code (dict) rendered, plain old text translated
    when it is a catalogue sentence and shown as stored otherwise."""
    if isinstance(value, dict) and "money" in value:
        return format_money(value["money"], value.get("currency", CURRENCY_EUR))
    if isinstance(value, dict):
        return render_stored(value, value.get("text", ""))
    return _translated_text(value)


def _translated_text(text) -> str:
    # gettext("") would return the catalogue's header.
    text = "" if text is None else str(text)
    return _(text) if text.strip() else text


def provider_error_message(error: errors.ProviderError) -> dict | None:
    """The stored form of a rejection carrying the provider's own reason; None for the others."""
    for kind, code in (
        (errors.RedeemRefused, "provider.redeem_refused"),
        (errors.TokenInvalid, "provider.token_invalid"),
        (errors.Rejected, "provider.rejected"),
    ):
        if isinstance(error, kind):
            return stored(code, provider_text=error.message)
    return None


def provider_error_text(error: errors.ProviderError, *, money_moving: bool = False) -> str:
    """One sentence (or two) for staff about ``error``; says whether anything changed."""
    rejection = provider_error_message(error)
    if rejection is not None:
        return render_stored(rejection)
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


def told(message, checks=(), status="", *, stored_as: dict | None = None) -> dict:
    """What the ledger keeps of what staff were told (``ProviderOperation.staff_text``).

    Catalogue sentences are kept in their English source text, whoever's language the call ran
    in, so ``told_text`` finds them in the catalogue and shows them in the reader's language;
    ``stored_as`` (code and parameters) does the same for sentences with figures or provider text.
    """
    with translation.override("en"):
        kept = {"message": str(message), "checks": [str(c) for c in checks], "status": str(status or "")}
    if stored_as:
        kept.update(stored_as)
    return kept


def told_staff(error: errors.ProviderError, *, money_moving: bool = False) -> dict:
    """What staff are told about ``error``, as the ledger keeps it."""
    # In English whatever language the call ran in: stored, it is rendered in the reader's.
    with translation.override("en"):
        message = provider_error_text(error, money_moving=money_moving)
        checks = what_to_check(error)
    return told(message, checks, allsafe_status(error), stored_as=provider_error_message(error))


def told_text(kept: dict | None) -> dict:
    """``ProviderOperation.staff_text`` for a page: message and checks in the reader's language."""
    kept = kept or {}
    return {
        "message": render_stored(kept, kept.get("message", "")),
        "checks": [_translated_text(c) for c in kept.get("checks", [])],
        "status": kept.get("status", ""),
    }


def operation_error_text(operation) -> str:
    """The plain-words reason a recorded operation failed: what staff were told when it was recorded."""
    if operation.error_code == "OutcomeUnknown" and operation.state == "failed":
        # The outcome was unknown once, then settled as "not redeemed" (balance unchanged): the
        # page says that, never the "outcome unknown" warning the call was first recorded with.
        return str(NOT_REDEEMED_SETTLED) if operation.kind == "redeem" else _("It did not go through.")
    kept = operation.staff_text or {}
    return (
        render_stored(kept, kept.get("message", ""))
        or _translated_text(operation.error_message)
        or _("The operation did not go through.")
    )
