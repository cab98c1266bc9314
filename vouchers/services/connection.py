"""Testing a campaign's provider connection from the admin (PRODUCT.md, capability 1).

Allsafe: one availability call. LINA: ping, then login with the configured hash recipe; when that
login is refused, the other recipes of providers.md are tried (without touching the shared
session) and the report names the one that works. Every test writes one ledger row of kind
``test`` and one audit event, after the provider calls, so no transaction is open during HTTP.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from ..crypto import CredentialDecryptionError
from ..models import Campaign
from ..models.ledger import OperationKind
from ..providers.errors import AuthFailed, Misconfigured, ProviderError
from ..providers.lina import RECIPES
from .audit import audit_record
from .ledger import operation_log
from .providers import provider_client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionStep:
    name: str  # "credentials", "ping", "login", "availability"
    ok: bool
    detail: str


@dataclass(frozen=True)
class ConnectionReport:
    """What a connection test found. ``message`` and ``what_to_check`` are for staff."""

    ok: bool
    provider: str
    message: str
    steps: tuple[ConnectionStep, ...] = ()
    what_to_check: tuple[str, ...] = ()
    #: LINA only: a recipe that logged in when the configured one was refused.
    working_recipe: str = ""
    error_code: str = ""


def campaign_test_connection(*, campaign: Campaign, actor) -> ConnectionReport:
    """Call the provider as a connection test and record it (ledger row + audit event).

    Never raises for provider or credential problems: they become a report with ``ok=False``.
    """
    started = time.monotonic()
    steps: list[ConnectionStep] = []
    working_recipe = ""
    error: ProviderError | None = None
    try:
        client = provider_client(campaign)
    except CredentialDecryptionError:
        error = Misconfigured(
            _("The campaign's stored credentials cannot be decrypted, so no call was made."),
            what_to_check=[
                _("The key they were encrypted with was removed from FIELD_ENCRYPTION_KEYS: put it back."),
                _("Or enter the campaign's password and shared key again."),
            ],
        )
        steps.append(ConnectionStep("credentials", False, error.message))
    except ProviderError as exc:
        error = exc
        steps.append(ConnectionStep("credentials", False, exc.message))
    else:
        try:
            if campaign.is_lina:
                error, working_recipe = _test_lina(client, campaign, steps)
            else:
                error = _test_allsafe(client, steps)
        except Exception:  # a bug must not turn the admin page into a server error
            logger.exception("connection test of campaign %s failed unexpectedly", campaign.pk)
            error = ProviderError(_("The connection test failed unexpectedly; the error was logged."))
            steps.append(ConnectionStep("unexpected", False, error.message))

    message = _("The connection works.") if error is None else error.message
    report = ConnectionReport(
        ok=error is None,
        provider=campaign.provider,
        message=message,
        steps=tuple(steps),
        what_to_check=tuple(error.what_to_check) if error else (),
        working_recipe=working_recipe,
        error_code=error.code if error else "",
    )
    with transaction.atomic():
        operation_log(
            campaign=campaign,
            user=actor,
            kind=OperationKind.TEST,
            started=started,
            request_data={
                "provider": campaign.provider,
                "recipe": campaign.lina_hash_recipe if campaign.is_lina else "",
            },
            response_data={
                "ok": report.ok,
                "steps": [asdict(step) for step in report.steps],
                "working_recipe": working_recipe,
            },
            error=error,
        )
        audit_record(
            actor=actor,
            action="campaign.connection_tested",
            campaign=campaign,
            obj=campaign,
            summary=f"Connection test of {campaign.name}: {'ok' if report.ok else 'failed'}",
            data={"ok": report.ok, "error": report.error_code, "working_recipe": working_recipe},
        )
    return report


def _test_allsafe(client, steps: list[ConnectionStep]) -> ProviderError | None:
    try:
        availability = client.availability()
    except ProviderError as exc:
        steps.append(ConnectionStep("availability", False, exc.message))
        return exc
    in_stock = sum(item.remaining for item in availability.items)
    steps.append(
        ConnectionStep(
            "availability",
            True,
            _("Allsafe answered: %(types)d voucher types, %(count)d vouchers in stock.")
            % {"types": len(availability.items), "count": in_stock},
        )
    )
    return None


def _test_lina(client, campaign: Campaign, steps: list[ConnectionStep]) -> tuple[ProviderError | None, str]:
    try:
        ping = client.ping()
    except ProviderError as exc:
        steps.append(ConnectionStep("ping", False, exc.message))
        return exc, ""
    steps.append(
        ConnectionStep("ping", True, _("LINA answered; it sees the portal as %(ip)s.") % {"ip": ping.ip})
    )
    login = getattr(client, "login", None)
    if login is None:  # a stand-in client without a login step (the fake provider)
        return None, ""
    configured = campaign.lina_hash_recipe
    try:
        login(recipe=configured, ip=ping.ip)
    except AuthFailed as refused:
        steps.append(
            ConnectionStep(
                "login", False, _("Login with recipe %(recipe)s refused.") % {"recipe": configured}
            )
        )
        return _find_working_recipe(login, configured, ping.ip, refused, steps)
    except ProviderError as exc:
        steps.append(ConnectionStep("login", False, exc.message))
        return exc, ""
    steps.append(
        ConnectionStep("login", True, _("Login with recipe %(recipe)s accepted.") % {"recipe": configured})
    )
    return None, ""


def _find_working_recipe(
    login, configured: str, ip: str, refused: AuthFailed, steps
) -> tuple[ProviderError, str]:
    """Try the other recipes once each (failed logins count towards LINA's DENIED limit)."""
    for recipe in RECIPES:
        if recipe == configured:
            continue
        try:
            login(recipe=recipe, ip=ip, remember=False)
        except AuthFailed:
            steps.append(
                ConnectionStep(
                    "login", False, _("Login with recipe %(recipe)s refused.") % {"recipe": recipe}
                )
            )
            continue
        except ProviderError as exc:
            steps.append(ConnectionStep("login", False, exc.message))
            return exc, ""
        steps.append(
            ConnectionStep("login", True, _("Login with recipe %(recipe)s accepted.") % {"recipe": recipe})
        )
        return (
            AuthFailed(
                _(
                    "LINA refused the login with the configured recipe %(configured)s, but accepts "
                    "%(working)s. Change the campaign's LINA login hash recipe to %(working)s."
                )
                % {"configured": configured, "working": recipe},
                what_to_check=[_("The LINA login hash recipe in the campaign's LINA options.")],
                status_code=refused.status_code,
            ),
            recipe,
        )
    return refused, ""
