"""Testing a campaign's provider connection from the admin (PRODUCT.md, capability 1).

Allsafe: one availability call. LINA: ping, then ONE login with the configured hash recipe. A
refused login looks the same whether the password or the recipe is wrong, and every refused login
counts towards LINA's DENIED lock-out of the whole shop, so the other recipes of providers.md are
tried only on the explicit "detect recipe" action (without touching the shared session); the
report names the one that works and says how many calls the test made. Every test writes one ledger row of kind
``test`` and one audit event, after the provider calls, so no transaction is open during HTTP.

The test runs on what the admin form holds (``typed``), saved or not, and never saves it: a
blank secret means "the stored one", except when the typed base URL points at another address
(scheme, host or port) than the saved one. Stored secrets are only ever sent to the address they
were entered for, so then the secrets must be typed again, and nothing is called until they are.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import staff_text
from ..models import Campaign
from ..models.ledger import OperationKind
from ..providers.endpoints import display_host
from ..providers.errors import (
    AuthFailed,
    Misconfigured,
    OutcomeUnknown,
    ProviderError,
    ProviderMaintenance,
    ProviderUnavailable,
)
from ..providers.lina import RECIPES
from .audit import audit_record
from .campaigns import endpoint_changed
from .pipeline import operation_log, provider_call

#: Steps that call the provider (each counts in ``ConnectionReport.calls``).
CALLING_STEPS = ("ping", "login", "availability")


@dataclass(frozen=True)
class ConnectionStep:
    name: str  # "credentials", "ping", "login", "availability", "unexpected"
    ok: bool
    detail: str

    @property
    def label(self) -> str:
        """The step's name for staff."""
        labels = {
            "credentials": _("Credentials"),
            "ping": _("Reaching LINA (ping)"),
            "login": _("LINA login"),
            "availability": _("Allsafe availability"),
        }
        return str(labels.get(self.name, _("Connection test")))


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
    #: True when the values in the form (not saved) were tested, False for the saved ones.
    typed: bool = False

    @property
    def failed_step(self) -> ConnectionStep | None:
        """The first step that failed (where the connection broke), if any."""
        return next((step for step in self.steps if not step.ok), None)


def campaign_test_connection(
    *,
    campaign: Campaign,
    actor,
    detect_recipe: bool = False,
    typed: Campaign | None = None,
    new_password: str = "",
    new_shared_key: str = "",
) -> ConnectionReport:
    """Call the provider as a connection test and record it (ledger row + audit event).

    ``typed``: an unsaved copy of the campaign carrying the values of the admin form, with
    ``new_password`` / ``new_shared_key`` as typed (blank: the stored one, see the module
    docstring). It is tested and never saved. Without it the saved values are tested.
    ``detect_recipe`` (LINA): after a refused login, also try the other login recipes.
    Never raises for provider or credential problems: they become a report with ``ok=False``.
    """
    started = time.monotonic()
    steps: list[ConnectionStep] = []
    working_recipe = ""
    error: ProviderError | None = None
    subject, from_form = campaign, typed is not None
    if from_form:
        subject, error = _typed_subject(campaign, typed, new_password, new_shared_key)
        if error is not None:
            steps.append(ConnectionStep("credentials", False, error.message))
    if error is None:
        error, working_recipe = _run(subject, steps, detect_recipe=detect_recipe, typed=from_form)

    calls = sum(1 for step in steps if step.name in CALLING_STEPS)
    if error is None:
        message = _("The connection works.")
        if from_form:
            message += " " + _("These are the values in the form; they are not saved until you press Save.")
    else:
        message = error.message
    if calls:
        message = f"{message} " + _("(%(calls)d calls to the provider.)") % {"calls": calls}
    what_to_check = list(error.what_to_check) if error else []
    if (
        isinstance(error, AuthFailed)
        and subject.is_lina
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
        provider=subject.provider,
        message=message,
        steps=tuple(steps),
        what_to_check=tuple(what_to_check),
        working_recipe=working_recipe,
        error_code=error.code if error else "",
        calls=calls,
        typed=from_form,
    )
    values = "form" if from_form else "saved"
    with transaction.atomic():
        operation_log(
            campaign=campaign,
            user=actor,
            kind=OperationKind.TEST,
            started=started,
            request_data={
                "provider": subject.provider,
                "values": values,
                "host": display_host(subject.base_url),
                "recipe": subject.lina_hash_recipe if subject.is_lina else "",
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
            summary=(
                f"Connection test of {campaign.name} ({values} values): {'ok' if report.ok else 'failed'}"
            ),
            message=staff_text.stored_sentence(
                staff_text.AUDIT_CONNECTION_TESTED_OK
                if report.ok
                else staff_text.AUDIT_CONNECTION_TESTED_FAILED,
                campaign=campaign.name,
                values=values,
            ),
            data={
                "ok": report.ok,
                "error": report.error_code,
                "working_recipe": working_recipe,
                "values": values,
            },
        )
    return report


def _typed_subject(
    campaign: Campaign, typed: Campaign, new_password: str, new_shared_key: str
) -> tuple[Campaign, ProviderError | None]:
    """An in-memory campaign with the typed values and the secrets to test them with.

    The copy is never saved. Stored secrets stay on it only while the typed base URL points at
    the saved address; otherwise the ones the provider needs must have been typed.
    """
    saved = Campaign.objects.only("base_url", "api_password", "api_shared_key").get(pk=campaign.pk)
    subject = copy.copy(typed)
    # The stored (still encrypted) values: decrypted only if the provider call needs them.
    subject.api_password = Campaign.api_password.stored(saved)
    subject.api_shared_key = Campaign.api_shared_key.stored(saved)
    if new_password:
        subject.api_password = new_password
    if new_shared_key:
        subject.api_shared_key = new_shared_key
    if not endpoint_changed(saved.base_url, subject.base_url):
        return subject, None
    missing = []
    if not new_password:
        subject.api_password = ""
        missing.append(_("API password"))
    if not new_shared_key:
        subject.api_shared_key = ""
        if subject.is_lina:
            missing.append(_("shared key"))
    if not missing:
        return subject, None
    return subject, Misconfigured(
        _(
            "The base URL in the form points at %(new)s, not at the saved %(old)s. Stored secrets "
            "are only sent to the address they were entered for, so nothing was called."
        )
        % {"new": display_host(subject.base_url), "old": display_host(saved.base_url)},
        what_to_check=[
            _("Enter the %(secrets)s for %(new)s and test again.")
            % {"secrets": " / ".join(str(item) for item in missing), "new": display_host(subject.base_url)},
            _("Or put the saved base URL back."),
        ],
    )


class ConnectionTestCrashed(ProviderError):
    """Something other than a provider error broke the test (a bug): logged, never a server error."""

    default_message = gettext_lazy("The connection test failed unexpectedly; the error was logged.")


def _run(
    subject: Campaign, steps: list[ConnectionStep], *, detect_recipe: bool, typed: bool
) -> tuple[ProviderError | None, str]:
    """Run the provider's steps through the pipeline's call; (error or None, working recipe)."""

    def call(client):
        if subject.is_lina:
            return _test_lina(client, subject, steps, detect_recipe=detect_recipe, remember=not typed)
        return _test_allsafe(client, steps), ""

    outcome = provider_call(
        kind=OperationKind.TEST, campaign=subject, call=call, crashed=ConnectionTestCrashed
    )
    if outcome.error is not None:  # no client (credentials), or the test itself broke
        name = "unexpected" if isinstance(outcome.error, ConnectionTestCrashed) else "credentials"
        steps.append(ConnectionStep(name, False, outcome.error.message))
        return outcome.error, ""
    error, working_recipe = outcome.result
    if error is not None and steps and steps[-1].name in ("ping", "availability"):
        explained = _explain_unreachable(error, subject)
        if explained is not error:
            steps[-1] = ConnectionStep(steps[-1].name, False, explained.message)
            error = explained
    return error, working_recipe


def _explain_unreachable(error: ProviderError, subject: Campaign) -> ProviderError:
    """The first call failed: say what that means for the base URL instead of "try again".

    Only transport failures and answers that are not the provider's are reworded; the
    provider's own answers (maintenance, 401, DENIED...) keep their message.
    """
    host = display_host(subject.base_url)
    check_url = _("The base URL %(url)s: scheme, host name, port and path.") % {"url": subject.base_url}
    if isinstance(error, ProviderMaintenance) or not isinstance(error, (ProviderUnavailable, OutcomeUnknown)):
        return error
    if "shared cache" in error.detail:  # our own store failed before sending (providers/lina.py)
        return error
    if isinstance(error, OutcomeUnknown) and "read timeout" in error.detail:
        message = _(
            "%(host)s accepted the connection but did not answer within the read timeout "
            "(%(seconds)s s). Nothing was changed."
        ) % {"host": host, "seconds": subject.read_timeout}
        checks = [check_url, _("The read timeout in the campaign's connection settings.")]
    elif isinstance(error, OutcomeUnknown):
        # A test only reads: a connection that broke off changed nothing at the provider.
        message = _("The connection to %(host)s broke off before an answer came. Nothing was changed.") % {
            "host": host
        }
        checks = [
            check_url,
            _("That the portal's server can reach this address (network, firewall, proxy)."),
        ]
    elif error.status_code is None:
        message = _("%(host)s could not be reached. Nothing was changed.") % {"host": host}
        checks = [
            check_url,
            _("That the portal's server can reach this address (network, firewall, DNS)."),
        ]
    else:
        message = _(
            "%(host)s answered with HTTP %(status)s, which is not an answer of this provider's API. "
            "Nothing was changed."
        ) % {"host": host, "status": error.status_code}
        checks = [
            check_url,
            _("The provider's status: if the address is right, it may be down; test again later."),
        ]
    return type(error)(message, what_to_check=checks, status_code=error.status_code, detail=error.detail)


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


def _login_step(recipe: str, accepted: bool) -> ConnectionStep:
    if accepted:
        return ConnectionStep("login", True, _("Login with recipe %(recipe)s accepted.") % {"recipe": recipe})
    return ConnectionStep("login", False, _("Login with recipe %(recipe)s refused.") % {"recipe": recipe})


def _test_lina(
    client,
    campaign: Campaign,
    steps: list[ConnectionStep],
    *,
    detect_recipe: bool = False,
    remember: bool = True,
) -> tuple[ProviderError | None, str]:
    """Ping, then log in with the configured recipe; with ``detect_recipe``, after a refusal, the
    other recipes once each (failed logins count towards LINA's DENIED limit)."""
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
    others = [recipe for recipe in RECIPES if recipe != configured] if detect_recipe else []
    refused: AuthFailed | None = None
    for recipe in (configured, *others):
        try:
            # Typed values (remember=False) and other recipes must not replace the tills' session.
            login(recipe=recipe, ip=ping.ip, remember=remember and recipe == configured)
        except AuthFailed as exc:
            steps.append(_login_step(recipe, accepted=False))
            refused = refused or exc
            continue
        except ProviderError as exc:
            steps.append(ConnectionStep("login", False, exc.message))
            return exc, ""
        steps.append(_login_step(recipe, accepted=True))
        if refused is None:
            return None, ""
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
