"""Allsafe (Techsys) Redemption API client (providers.md, "Allsafe").

HTTP Basic auth per campaign. Errors are mapped BY STATUS NUMBER only, never by body text: the
provider's own codes 491-496 carry no standard reason phrase and the JSON ``detail`` is not
documented. Each row of providers.md's status table is one entry in :data:`STATUS_ERRORS`,
with the staff-facing message and what to check.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from .. import staff_text
from . import parsing
from .base import AllocatedVoucher, AllocateRequest, Availability, ProviderConfig
from .errors import (
    AuthFailed,
    InvalidVendor,
    Misconfigured,
    OutOfStock,
    ProviderError,
    ProviderUnavailable,
    UnexpectedAnswer,
    ValidationFailed,
)
from .http import HttpAnswer, Transport, unusable_answer

logger = logging.getLogger(__name__)


#: providers.md's status table, by number; the words are the staff-text catalogue's.
STATUS_ERRORS: dict[int, type[ProviderError]] = {
    401: AuthFailed,
    491: Misconfigured,
    492: OutOfStock,
    495: ValidationFailed,
    496: InvalidVendor,
}


def error_for_status(status: int, *, detail: str = "") -> ProviderError:
    """The error for an HTTP status that is not a success (providers.md's table, by number)."""
    error = STATUS_ERRORS.get(status, ProviderUnavailable)
    message, checks = staff_text.ALLSAFE_STATUS.get(status, staff_text.ALLSAFE_UNAVAILABLE)
    return error(message, what_to_check=checks, status_code=status, detail=detail)


class AllsafeClient:
    """Implements :class:`~vouchers.providers.base.AllsafeProvider` over HTTP."""

    def __init__(self, config: ProviderConfig):
        self.config = config
        self.transport = Transport.for_client(
            "allsafe", config, auth=(config.username, config.password), secrets=(config.password,)
        )

    def _require_credentials(self) -> None:
        if not (self.config.username and self.config.password):
            raise Misconfigured(
                _("The campaign has no Allsafe user name or password."),
                what_to_check=[
                    str(_("Enter the API user name and password issued in the Allsafe management portal."))
                ],
            )

    def availability(self) -> Availability:
        """GET /availability with Basic auth; 204 means an empty list.
        Raises AuthFailed (401), Misconfigured (491), ProviderUnavailable. Safe to retry."""
        self._require_credentials()
        answer = self.transport.request("availability", "GET", "availability", money_moving=False)
        if answer.status == 204:
            # Documented: success, nothing to list. A body on a 204 is not HTTP; it is ignored.
            if not answer.empty:
                logger.info(
                    "Allsafe availability of campaign %s: 204 with a body, ignored", self.config.campaign_id
                )
            return Availability(items=(), raw=None, nothing_left=True)
        if answer.status != 200:
            raise error_for_status(answer.status, detail=f"allsafe availability: HTTP {answer.status}")
        if not answer.is_json:
            raise self._unreadable(answer, "availability")
        return parsing.allsafe_availability(answer.data)

    def allocate(self, request: AllocateRequest) -> AllocatedVoucher:
        """POST <allocate path> with JSON {vendor, value, reference} (names are campaign settings).
        Never retried: no idempotency key is documented, so a lost answer is OutcomeUnknown.
        Raises OutOfStock (492), InvalidVendor (496), ValidationFailed (495), AuthFailed (401),
        Misconfigured (491) — definite, whatever the body —; OutcomeUnknown (timeout, lost
        answer, 5xx, redirect, HTML or unreadable body, a voucher-less success); ProviderUnavailable
        (not sent, or another 4xx with a JSON body: Allsafe refused)."""
        self._require_credentials()
        config = self.config
        body = {
            config.allsafe_vendor_field: request.vendor,
            config.allsafe_value_field: _json_number(request.value),
            config.allsafe_reference_field: request.reference,
        }
        # The HTTP layer has already turned a 5xx, a redirect or a body that is not JSON into
        # OutcomeUnknown, except for the documented statuses, which are definite whatever the body.
        answer = self.transport.request(
            "allocate",
            "POST",
            config.allsafe_allocate_path,
            json_body=body,
            money_moving=True,
            definite_statuses=STATUS_ERRORS.keys(),
        )
        if answer.status == 200:
            return parsing.allsafe_voucher(
                answer.data, requested_vendor=request.vendor, requested_value=request.value
            )
        if 200 < answer.status < 300:  # a success of a kind Allsafe does not send
            raise unusable_answer(
                answer,
                provider="allsafe",
                operation="allocate",
                money_moving=True,
                reason="unexpected success status",
            )
        raise error_for_status(answer.status, detail=f"allsafe allocate: HTTP {answer.status}")

    @staticmethod
    def _unreadable(answer: HttpAnswer, operation: str) -> ProviderError:
        message, checks = staff_text.ALLSAFE_UNAVAILABLE
        return UnexpectedAnswer(
            str(message),
            what_to_check=checks,
            status_code=answer.status,
            detail=f"allsafe {operation}: body is not JSON",
        )


def _json_number(value: Decimal) -> int | float:
    """Denominations go out as JSON numbers (100, 12.5): whole values as integers."""
    value = Decimal(value)
    if value == value.to_integral_value():
        return int(value)
    return float(value)
