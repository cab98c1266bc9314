"""Issue 13's "done means", against the live sandbox serving the documented forms: sessions that
lapse (after N uses, on an IP change, on demand) rejected as 400 + status error (documented) or
as 401 (the other plausible form), maintenance, DENIED per calling address, Allsafe's 204."""

from __future__ import annotations

import math
import re
import uuid
from decimal import Decimal

import pytest
from django.contrib.messages import constants as message_levels
from django.contrib.messages import get_messages
from django.urls import reverse

from vouchers.access import roles
from vouchers.models import ProviderOperation, SaleTemplate, StockAlert
from vouchers.models.ledger import OperationKind, OperationState
from vouchers.models.sales import Sale
from vouchers.models.stock import AlertKind, AlertState
from vouchers.services.connection import campaign_test_connection
from vouchers.services.refusals import Refusal
from vouchers.services.stock import stock_poll
from vouchers.services.tokens import token_check, token_redeem
from vouchers.values.codes import mask_code

from ..support.factories import make_user
from ..support.sandbox import sandbox_allsafe_vault, sandbox_lina_shop

pytestmark = pytest.mark.django_db

CODE = "SANDBOXFIDEL0042"
MAINTENANCE = "LINA is in maintenance. Nothing was changed; try again later."
FORMS = [pytest.param(400, id="400-status-error"), pytest.param(401, id="401")]


def text_of(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def shop(sandbox, settings):
    settings.PROVIDER_RETRY_BACKOFF_SECONDS = 0
    settings.LOOKUP_LIMIT_PER_USER = 100  # 30 checks in a row from one till are the point here
    return sandbox_lina_shop(sandbox, code=CODE, read_timeout=2)


@pytest.fixture
def till(shop):
    return make_user(roles.CASHIER, shop, username="till")


@pytest.fixture(params=FORMS)
def rejection(request, sandbox):
    """The sandbox rejects lapsed sessions in this form (both are tested everywhere)."""
    sandbox.set_session_rejection(request.param)
    return request.param


def logins(sandbox) -> int:
    return sandbox.request_count("lina", "login")


def applied_redeems(sandbox) -> list[dict]:
    return [e for e in sandbox.journal("lina", "redeem", applied=True) if e["code_masked"] == mask_code(CODE)]


# --- Lapsing sessions never stop the desk -----------------------------------------------------


@pytest.mark.parametrize("uses", [1, 3, 7])
def test_thirty_checks_in_a_row_with_sessions_lapsing_after_n_uses(sandbox, shop, till, rejection, uses):
    sandbox.set_lina_account("demo-shop", session_max_uses=uses)
    cards = [token_check(campaign=shop, user=till, code=CODE) for _ in range(30)]
    assert all(card.valid and card.remaining_value == Decimal("40.00") for card in cards)
    # Only the logins the expiries force: one per session of ``uses`` checks.
    assert logins(sandbox) == math.ceil(30 / uses)
    assert sandbox.request_count("lina", "checkcode") == 30 + math.ceil(30 / uses) - 1
    checks = ProviderOperation.objects.filter(kind=OperationKind.CHECK)
    assert checks.count() == 30 and not checks.exclude(state=OperationState.SUCCEEDED).exists()


def test_an_ip_change_mid_shift_costs_one_login(sandbox, shop, till, rejection):
    assert token_check(campaign=shop, user=till, code=CODE).valid
    sandbox.set_client_ip("198.51.100.23")
    assert token_check(campaign=shop, user=till, code=CODE).valid
    assert logins(sandbox) == 2


def test_a_redeem_whose_first_answer_is_a_session_rejection_is_applied_once(sandbox, shop, till, rejection):
    card = token_check(campaign=shop, user=till, code=CODE)
    sandbox.expire_sessions("demo-shop")
    outcome = token_redeem(
        campaign=shop,
        user=till,
        code=CODE,
        amount=Decimal("15.00"),
        request_token=uuid.uuid4().hex,
        check_operation_id=card.operation.pk,
    )
    assert outcome.operation.state == OperationState.SUCCEEDED
    assert len(applied_redeems(sandbox)) == 1
    assert sandbox.token(CODE)["remaining"] == "25.00"
    assert sandbox.request_count("lina", "redeem") == 2  # the rejected one and its one repeat


def test_the_desk_page_does_not_show_a_lapsed_session(sandbox, shop, till, client, rejection):
    client.force_login(till)
    url = reverse("vouchers:desk-check", kwargs={"campaign": shop.slug})
    assert client.post(url, {"code": CODE}).status_code == 200
    sandbox.expire_sessions()
    response = client.post(url, {"code": CODE})
    assert response.status_code == 200
    assert 'name="amount"' in response.content.decode()  # the redeem form of a valid card
    assert not ProviderOperation.objects.filter(kind=OperationKind.CHECK).exclude(state="succeeded").exists()
    assert logins(sandbox) == 2


@pytest.fixture
def seller(shop):
    return make_user(roles.MARKETING_MANAGER, shop, username="seller")


@pytest.fixture
def template(shop):
    return SaleTemplate.objects.create(
        campaign=shop, name="Geburtstag", template_hash="5f0c2b7e9a1d4c38", allowed_layouts=[1, 2]
    )


def sell(client, shop, template):
    url = reverse("vouchers:sale-sell", kwargs={"campaign": shop.slug})
    page = client.get(url)
    token = re.search(rb'name="request_token" value="([0-9a-f]{32})"', page.content).group(1).decode()
    return client.post(
        url, {"request_token": token, "amount": "25.00", "template": template.pk, "layout": ""}
    )


def test_selling_does_not_show_a_lapsed_session(sandbox, shop, seller, template, client, rejection):
    client.force_login(seller)
    assert sell(client, shop, template).status_code == 302
    sandbox.expire_sessions()
    response = sell(client, shop, template)
    assert response.status_code == 302
    assert list(Sale.objects.values_list("operation__state", flat=True)) == ["succeeded", "succeeded"]
    assert len(sandbox.journal("lina", "purchase", applied=True)) == 2
    assert logins(sandbox) == 2


# --- Maintenance is named on every page --------------------------------------------------------


@pytest.mark.parametrize("spelling", ["Maintenance", "Maintanance"])
def test_maintenance_is_named_on_desk_redeem_sell_and_test_connection(
    sandbox, shop, till, seller, template, client, campaign_admin_of_shop, spelling
):
    card = token_check(campaign=shop, user=till, code=CODE)
    sandbox.set_maintenance(True, spelling)

    client.force_login(till)
    desk = client.post(reverse("vouchers:desk-check", kwargs={"campaign": shop.slug}), {"code": CODE})
    assert MAINTENANCE in text_of(desk) and "could not be reached" not in text_of(desk)

    outcome = token_redeem(
        campaign=shop,
        user=till,
        code=CODE,
        amount=Decimal("5.00"),
        request_token=uuid.uuid4().hex,
        check_operation_id=card.operation.pk,
    )
    assert outcome.operation.state == OperationState.FAILED
    assert outcome.operation.error_code == "ProviderMaintenance"
    page = client.get(reverse("vouchers:desk-operation", args=[outcome.operation.pk]))
    assert MAINTENANCE in text_of(page)
    assert sandbox.token(CODE)["remaining"] == "40.00"

    client.force_login(seller)
    sold = sell(client, shop, template)
    detail = client.get(sold["Location"]) if sold.status_code == 302 else sold
    assert MAINTENANCE in text_of(detail) and "could not be reached" not in text_of(detail)

    report = campaign_test_connection(campaign=shop, actor=campaign_admin_of_shop)
    assert not report.ok and report.message.startswith(MAINTENANCE)


@pytest.fixture
def campaign_admin_of_shop(shop):
    return make_user(roles.CAMPAIGN_ADMIN, shop, username="shopadmin")


# --- DENIED is kept away from the shop ---------------------------------------------------------


def test_two_tills_with_wrong_codes_never_reach_denied(sandbox, shop, client):
    """The sandbox's default: DENIED after 5 failed calls per address in 60 s; the portal's
    default budget: at most 4 per LINA account, shared by every till."""
    tills = [make_user(roles.CASHIER, shop, username=f"till{n}") for n in (1, 2)]
    url = reverse("vouchers:desk-check", kwargs={"campaign": shop.slug})
    pages = []
    for attempt in range(10):
        client.force_login(tills[attempt % 2])
        pages.append(text_of(client.post(url, {"code": f"WRONGCODE{attempt:07d}"})))
    counts = sandbox.state()["lina_failure_counts"]
    assert counts and all(c["locked_for_seconds"] == 0 for c in counts.values())  # never DENIED
    assert max(c["recent_failures"] for c in counts.values()) == 4
    paused = [p for p in pages if "The portal pauses calls so LINA does not lock the whole shop out" in p]
    assert len(paused) == 6
    assert all(re.search(r"Try again after \d{1,2}[:.]\d{2}", p) for p in paused)
    # The pause is the portal's own (so it can say when); LINA was not asked during it.
    assert sandbox.request_count("lina", "checkcode") == 4
    with pytest.raises(Refusal) as refused:
        token_check(campaign=shop, user=tills[0], code=CODE)
    assert refused.value.code == "CallBudgetSpent"


# --- Allsafe 204: success with nothing to list ---------------------------------------------------


@pytest.fixture
def vault(sandbox):
    return sandbox_allsafe_vault(sandbox, low_stock_threshold=10)


def empty_the_vaults(sandbox) -> set[tuple[str, Decimal]]:
    types = set()
    for row in sandbox.stock("demo-allsafe"):
        sandbox.set_stock(row["vendor"], row["value"], 0, vault=row["vault"])
        types.add((row["vendor"], Decimal(str(row["value"])).quantize(Decimal("0.01"))))
    return types


def test_an_empty_vault_puts_every_type_out_of_stock_once_and_the_poll_succeeds(sandbox, vault):
    assert stock_poll(campaign_id=vault.pk).status == "succeeded"
    types = empty_the_vaults(sandbox)
    assert len(types) > 1

    result = stock_poll(campaign_id=vault.pk)

    assert result.status == "succeeded", result
    poll = ProviderOperation.objects.filter(campaign=vault, kind=OperationKind.POLL).latest("pk")
    assert poll.state == OperationState.SUCCEEDED and poll.response_data["nothing_left"] is True
    out = StockAlert.objects.filter(campaign=vault, kind=AlertKind.OUT_OF_STOCK, state=AlertState.OPEN)
    assert {(a.vendor, a.value) for a in out} == types
    assert not StockAlert.objects.filter(kind__in=[AlertKind.STALE, AlertKind.MISCONFIGURED]).exists()
    again = stock_poll(campaign_id=vault.pk)
    assert again.status == "succeeded" and again.opened == []  # once each
    assert StockAlert.objects.filter(campaign=vault, kind=AlertKind.OUT_OF_STOCK).count() == len(types)
    vault.stock_monitor.refresh_from_db()
    assert vault.stock_monitor.consecutive_failures == 0


def test_refresh_of_an_empty_vault_says_no_vouchers_left_as_information(sandbox, vault, client):
    empty_the_vaults(sandbox)
    user = make_user(roles.MARKETING_MANAGER, vault, username="vaultseller")
    client.force_login(user)
    response = client.post(reverse("vouchers:availability-refresh", kwargs={"campaign": vault.slug}))
    assert response.status_code == 302
    [message] = list(get_messages(response.wsgi_request))
    assert message.level == message_levels.INFO
    assert "no vouchers left" in str(message)
    poll = ProviderOperation.objects.get(campaign=vault, kind=OperationKind.POLL)
    assert poll.state == OperationState.SUCCEEDED


# --- Unusable answers on the pages: plain words, never a server error -----------------------------


@pytest.mark.parametrize("kind", ["html_error", "http_500", "malformed_json"])
def test_the_desk_page_explains_an_unusable_answer_in_plain_words(sandbox, shop, till, client, kind):
    sandbox.set_fault("lina", "checkcode", kind, count=None)
    client.force_login(till)
    response = client.post(reverse("vouchers:desk-check", kwargs={"campaign": shop.slug}), {"code": CODE})
    assert response.status_code == 200
    text = text_of(response)
    assert "Nothing was changed" in text
    assert "Bad Gateway" not in text and "Traceback" not in text
    check = ProviderOperation.objects.get(kind=OperationKind.CHECK)
    assert check.state == OperationState.FAILED and check.error_code


@pytest.mark.parametrize("kind", ["html_error", "malformed_json"])
def test_the_refresh_explains_an_unusable_allsafe_answer_as_an_error(sandbox, vault, client, kind):
    sandbox.set_fault("allsafe", "availability", kind, count=None)
    client.force_login(make_user(roles.MARKETING_MANAGER, vault, username="vaultseller"))
    response = client.post(reverse("vouchers:availability-refresh", kwargs={"campaign": vault.slug}))
    assert response.status_code == 302
    [message] = list(get_messages(response.wsgi_request))
    assert message.level == message_levels.ERROR and "<" not in str(message)
