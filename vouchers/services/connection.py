"""Testing a campaign's provider connection from the admin (PRODUCT.md, capability 1).

Allsafe: one availability call. LINA: ping, then ONE login with the configured hash recipe. A
refused login looks the same whether the password or the recipe is wrong, and every refused login
counts towards LINA's DENIED lock-out of the whole shop, so the other recipes of providers.md are
tried only on the explicit "detect recipe" action (without touching the shared session); the
report names the one that works and says how many calls the test made. Every test writes one ledger row of kind
``test`` and one audit event, after the provider calls, so no transaction is open during HTTP.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from ..models import Campaign
from ..models.ledger import OperationKind
from ..providers.errors import AuthFailed, ProviderError
from ..providers.lina import RECIPES
from .audit import audit_record
from .pipeline import operation_log
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
    #: How many provider calls the test made (each refused login counts towards DENIED).
    calls: int = 0


def campaign_test_connection(*, campaign: Campaign, actor, detect_recipe: bool = False) -> ConnectionReport:
    """Call the provider as a connection test and record it (ledger row + audit event).

    ``detect_recipe`` (LINA): after a refused login, also try the other login recipes.
    Never raises for provider or credential problems: they become a report with ``ok=False``.
    """
    started = time.monotonic()
    steps: list[ConnectionStep] = []
    working_recipe = ""
    error: ProviderError | None = None
    try:
        client = provider_client(campaign)
    except ProviderError as exc:
        error = exc
        steps.append(ConnectionStep("credentials", False, exc.message))
    else:
        try:
            if campaign.is_lina:
                error, working_recipe = _test_lina(client, campaign, steps, detect_recipe=detect_recipe)
            else:
                error = _test_allsafe(client, steps)
        except Exception:  # a bug must not turn the admin page into a server error
            logger.exception("connection test of campaign %s failed unexpectedly", campaign.pk)
            error = ProviderError(_("The connection test failed unexpectedly; the error was logged."))
            steps.append(ConnectionStep("unexpected", False, error.message))

    calls = sum(1 for step in steps if step.name in ("ping", "login", "availability"))
    message = _("The connection works.") if error is None else error.message
    if calls:
        message = f"{message} " + _("(%(calls)d calls to the provider.)") % {"calls": calls}
    what_to_check = list(error.what_to_check) if error else []
    if (
        isinstance(error, AuthFailed)
        and campaign.is_lina
        and not detect_recipe
        and any(step.name == "login" and not step.ok for step in steps)
    ):
        what_to_check.append(
            _(
                "If the password and shared key are right, the login recipe may be wrong: use "
                '"Detect login recipe" (it tries the %(count)d other recipes; each refused login '
                "counts towards LINA's lock-out)."
            )
            % {"count": len(RECIPES) - 1}
        )
    report = ConnectionReport(
        ok=error is None,
        provider=campaign.provider,
        message=message,
        steps=tuple(steps),
        what_to_check=tuple(what_to_check),
        working_recipe=working_recipe,
        error_code=error.code if error else "",
        calls=calls,
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
                "detect_recipe": detect_recipe,
            },
            response_data={
                "ok": report.ok,
                "steps": [asdict(step) for step in report.steps],
                "working_recipe": working_recipe,
                "calls": calls,
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


def _test_lina(
    client, campaign: Campaign, steps: list[ConnectionStep], *, detect_recipe: bool = False
) -> tuple[ProviderError | None, str]:
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
        if not detect_recipe:
            return refused, ""
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
