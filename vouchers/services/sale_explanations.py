"""What a person should check when a sale or allocation failed, by the ledger's error code.

The ledger keeps the error class name (``error_code``) and the staff-safe message; this adds the
checklist from providers.md (Allsafe status codes 401/491/492/495/496, LINA DENIED, ...).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

WHAT_TO_CHECK: dict[str, tuple[str, list]] = {
    "OutOfStock": (
        "492",
        [
            _("The vault may be out of vouchers, or has none of this vendor and value."),
            _("Refresh the availability and pick a vendor and value that is still in stock."),
        ],
    ),
    "InvalidVendor": (
        "496",
        [
            _("Allsafe does not know this vendor name."),
            _("Refresh the availability: the vendor may have been renamed or removed."),
        ],
    ),
    "ValidationFailed": (
        "495",
        [
            _("The provider rejected the request as malformed: a bug or a wrong campaign setting."),
            _(
                "Check the campaign's Allsafe allocate path and field names, or the LINA template hash and layout."
            ),
        ],
    ),
    "Misconfigured": (
        "491",
        [
            _("Allsafe 491: no vault is linked to the campaign — link one in the Allsafe portal."),
            _("Or the campaign's credentials or base URL are missing in the portal."),
        ],
    ),
    "AuthFailed": (
        "401",
        [
            _("The campaign's user name or password may be wrong."),
            _("The campaign's integration may have been revoked at the provider."),
            _("The provider campaign may not be Live (outside its start and end dates)."),
        ],
    ),
    "RateLimited": (
        "",
        [
            _("Too many failed calls: the provider refuses calls for a few minutes. Wait, then try again."),
        ],
    ),
    "ProviderMaintenance": (
        "",
        [_("LINA is in maintenance: nothing was sold. Try again later.")],
    ),
    "CallBudgetSpent": (
        "",
        [
            _(
                "Too many failed calls to LINA in the last minute: the portal pauses calls. Wait, then try again."
            )
        ],
    ),
    "ProviderUnavailable": (
        "",
        [
            _("Try again in a moment; nothing was sold."),
            _("If it keeps failing, a campaign admin can run Test connection on the campaign."),
        ],
    ),
    "OutcomeUnknown": (
        "",
        [
            _("The answer got lost: the provider may or may not have sold the voucher."),
            _("Do not sell again for this request; an admin settles it in the review of open operations."),
        ],
    ),
}


def explain(error_code: str) -> dict:
    """{'status': '492', 'checks': [...]} for a template; empty checks for unknown codes."""
    status, checks = WHAT_TO_CHECK.get(error_code or "", ("", []))
    return {"status": status, "checks": [str(c) for c in checks]}
