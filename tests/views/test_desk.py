"""Desk and review pages through the Django test client, with the fake provider."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from vouchers.access import roles
from vouchers.models import AuditEvent, ProviderOperation
from vouchers.providers import errors
from vouchers.services.pipeline import operation_claim

from ..support.factories import CampaignFactory, make_user

pytestmark = pytest.mark.django_db

CODE = "ABCD1234EFGH5678"


def desk_url(campaign="lina-shop"):
    return reverse("vouchers:desk-check", kwargs={"campaign": campaign})


def redeem_url(campaign="lina-shop"):
    return reverse("vouchers:desk-redeem", kwargs={"campaign": campaign})


def hidden(body: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', body).group(1)


@pytest.fixture
def desk(client, cashier, fake_provider):
    fake_provider.add_token(CODE, "50.00")
    client.force_login(cashier)
    return client


def check(client, code=CODE):
    response = client.post(desk_url(), {"code": code})
    assert response.status_code == 200
    return response.content.decode()


def redeem_form(body: str, amount: str) -> dict:
    return {
        "amount": amount,
        "code": hidden(body, "code"),
        "check": hidden(body, "check"),
        "request_token": hidden(body, "request_token"),
    }


def field_errors(body: str) -> str:
    return " ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', body, re.S))


# --- Access -------------------------------------------------------------------------------------


def test_desk_needs_login_and_the_desk_permission(client, marketing, lina_campaign):
    assert client.get(desk_url()).status_code == 302
    client.force_login(marketing)
    assert client.get(desk_url()).status_code == 403
    assert client.get(reverse("vouchers:desk-home")).status_code == 403


def test_desk_is_limited_to_own_lina_campaigns(client, cashier, other_campaign, allsafe_campaign):
    client.force_login(cashier)
    assert client.get(desk_url("other-shop")).status_code == 404
    make_user(roles.CASHIER, allsafe_campaign)
    superuser_view = client.get(desk_url("allsafe-vault"))
    assert superuser_view.status_code == 404


def test_desk_home_goes_to_the_only_campaign_and_remembers_the_choice(client, cashier, lina_campaign):
    client.force_login(cashier)
    response = client.get(reverse("vouchers:desk-home"))
    assert response["Location"] == desk_url()
    second = CampaignFactory(name="Second shop", slug="second-shop", provider="lina")
    cashier.memberships.create(campaign=second)
    client.get(desk_url("second-shop"))
    assert client.get(reverse("vouchers:desk-home"))["Location"] == desk_url("second-shop")
    # Choosing again via the chooser; a campaign not theirs is ignored.
    assert client.get(reverse("vouchers:desk-home"), {"campaign": "lina-shop"})["Location"] == desk_url()
    response = client.get(reverse("vouchers:desk-home"), {"campaign": "other"})
    assert response["Location"] == desk_url()  # the remembered one, not "other"
    body = client.get(desk_url()).content.decode()
    assert "Second shop" in body and "LINA shop" in body  # the campaign switch


def test_navigation_shows_desk_items_by_role(client, cashier, campaign_admin):
    client.force_login(cashier)
    body = client.get(reverse("vouchers:home")).content.decode()
    assert "Desk" in body and "Today&#x27;s redemptions" in body and "Unresolved operations" not in body
    client.force_login(campaign_admin)
    assert "Unresolved operations" in client.get(reverse("vouchers:home")).content.decode()


# --- Check --------------------------------------------------------------------------------------


def test_desk_page_has_a_scanner_friendly_code_field(desk):
    body = desk.get(desk_url()).content.decode()
    field = re.search(r"<input[^>]*name=\"code\"[^>]*>", body).group(0)
    assert "autofocus" in field and 'autocomplete="off"' in field
    assert "16 characters" in body
    assert "js/desk.js" in body and "<script>" not in body.replace('<script src="', "")


def test_check_shows_the_token_card_and_a_prefilled_redeem_form(desk, fake_provider):
    body = check(desk, "abcd 1234-efgh 5678")
    assert "ABCD-1234-EFGH-5678" in body
    assert "50.00 €" in body
    assert "partial redemption allowed" in body
    assert 'name="amount" value="50.00"' in body
    assert "readonly" not in re.search(r"<input[^>]*name=\"amount\"[^>]*>", body).group(0)
    assert fake_provider.calls["check"] == 1


def test_full_value_only_locks_the_amount_and_expired_shows_a_badge(desk, fake_provider):
    fake_provider.add_token("FULL1234EFGH5678", "25", full_value_only=True)
    body = check(desk, "FULL1234EFGH5678")
    assert "full value only" in body
    assert "readonly" in re.search(r"<input[^>]*name=\"amount\"[^>]*>", body).group(0)
    fake_provider.add_token("OLDX1234EFGH5678", "25", valid_until=timezone.localdate() - timedelta(days=2))
    body = check(desk, "OLDX1234EFGH5678")
    assert "expired" in body and 'id="redeem-form"' not in body


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "Scan or type the code"),
        ("ABC", "has 16 characters; this one has 3"),
        ("A" * 200, "this one has 200"),
        ("ÄBCD1234EFGH5678", "only contain the letters"),
        ("<script>alert(1)</script>", "only contain the letters"),
    ],
)
def test_bad_codes_get_a_message_next_to_the_field_and_no_call(desk, fake_provider, code, message):
    body = check(desk, code)
    assert message in field_errors(body)
    assert "<script>alert(1)</script>" not in body
    assert fake_provider.calls["check"] == 0


def test_unknown_code_shows_an_invalid_card(desk):
    body = check(desk, "ZZZZ9999ZZZZ9999")
    assert "invalid" in body and 'id="redeem-form"' not in body


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (errors.ProviderUnavailable(), "could not be reached. Nothing was changed"),
        (errors.OutcomeUnknown(), "did not answer in time. Nothing was changed"),
        (errors.RateLimited(retry_at=timezone.now() + timedelta(minutes=5)), "Try again after"),
        (errors.AuthFailed(), "did not accept this campaign"),
        (errors.Misconfigured(), "not set up correctly"),
        (errors.ValidationFailed(), "rejected the request as malformed"),
        (errors.TokenInvalid("Gutschein gesperrt"), "Gutschein gesperrt"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else "",
)
def test_check_errors_in_plain_words(desk, fake_provider, error, text):
    fake_provider.fail_next("check", error)
    body = check(desk)
    assert text in body
    assert 'id="token-card"' not in body


# --- Redeem -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("", "Enter the amount"),
        ("-5", "must be more than 0"),
        ("0", "must be more than 0"),
        ("1e3", "as a number"),
        ("12,345", "is ambiguous"),
        ("abc", "as a number"),
        ("50.01", "more than the remaining value"),
        ("10,005", "is ambiguous"),
        ("10,0055", "at most 2 decimal places"),
    ],
)
def test_bad_amounts_get_a_message_next_to_the_field_and_no_call(desk, fake_provider, amount, message):
    body = check(desk)
    response = desk.post(redeem_url(), redeem_form(body, amount))
    assert response.status_code == 200
    assert message in field_errors(response.content.decode())
    assert fake_provider.calls["redeem"] == 0
    assert not ProviderOperation.objects.filter(kind="redeem").exists()


def test_german_decimal_comma_is_accepted(desk, fake_provider):
    body = check(desk)
    response = desk.post(redeem_url(), redeem_form(body, "12,50"))
    assert response.status_code == 302
    assert ProviderOperation.objects.get(kind="redeem").amount == Decimal("12.50")


def test_tampered_or_missing_form_fields_never_give_a_server_error(desk, fake_provider):
    body = check(desk)
    form = redeem_form(body, "10")
    for broken in (
        {**form, "check": "nope"},
        {**form, "check": ""},
        {**form, "code": "<b>x</b>"},
        {**form, "request_token": ""},
        {**form, "request_token": "x" * 500},
        {},
    ):
        response = desk.post(redeem_url(), broken)
        assert response.status_code == 200
        assert "Check the code again" in response.content.decode()
    assert fake_provider.calls["redeem"] == 0
    assert desk.get(redeem_url()).status_code == 302


def test_redeem_shows_old_and_new_balance_and_a_printable_slip(desk, fake_provider):
    body = check(desk)
    response = desk.post(redeem_url(), redeem_form(body, "20"))
    assert response.status_code == 302
    page = desk.get(response["Location"]).content.decode()
    assert "print-slip" in page and "data-print" in page
    assert re.search(r'id="old-balance">50.00 €', page)
    assert re.search(r'id="new-balance">30.00 €', page)
    assert "••••5678" in page and CODE not in page


def test_double_submit_and_reload_redeem_once(desk, fake_provider):
    body = check(desk)
    form = redeem_form(body, "20")
    first = desk.post(redeem_url(), form)
    second = desk.post(redeem_url(), form)
    assert first["Location"] == second["Location"]
    assert fake_provider.calls["redeem"] == 1
    page = desk.get(second["Location"]).content.decode()
    assert "already sent once" in page
    assert desk.get(second["Location"]).status_code == 200  # reload of the result: just a GET
    assert fake_provider.calls["redeem"] == 1


def test_refusal_shows_the_providers_reason(desk, fake_provider):
    body = check(desk)
    fake_provider.fail_next("redeem", errors.RedeemRefused("Restwert nicht ausreichend"))
    page = desk.get(desk.post(redeem_url(), redeem_form(body, "20"))["Location"]).content.decode()
    assert "Not redeemed" in page and "Restwert nicht ausreichend" in page


def test_rate_limited_redeem_says_when_to_try_again(desk, fake_provider):
    body = check(desk)
    fake_provider.fail_next("redeem", errors.RateLimited(retry_at=timezone.now() + timedelta(minutes=5)))
    page = desk.get(desk.post(redeem_url(), redeem_form(body, "20"))["Location"]).content.decode()
    assert "Try again after" in page


def test_unknown_outcome_page_says_do_not_hand_over_and_refreshes(desk, fake_provider, settings):
    settings.DESK_UNKNOWN_REFRESH_SECONDS = 3
    body = check(desk)
    fake_provider.fail_next("check", errors.ProviderUnavailable())
    fake_provider.lose_answer_next("redeem")
    page = desk.get(desk.post(redeem_url(), redeem_form(body, "20"))["Location"]).content.decode()
    assert "not known" in page and "Do not hand over goods yet" in page
    assert 'data-refresh-seconds="3"' in page


def test_busy_code_is_reported_as_being_redeemed_elsewhere(desk, cashier, lina_campaign, fake_provider):
    body = check(desk)
    operation_claim(campaign=lina_campaign, user=None, kind="redeem", request_token="f" * 32, code=CODE)
    response = desk.post(redeem_url(), redeem_form(body, "20"))
    assert response.status_code == 200
    assert "being redeemed elsewhere" in response.content.decode()
    assert fake_provider.calls["redeem"] == 0


def test_operation_page_is_the_cashiers_own(desk, client, lina_campaign, fake_provider):
    body = check(desk)
    location = desk.post(redeem_url(), redeem_form(body, "20"))["Location"]
    other = make_user(roles.CASHIER, lina_campaign)
    client.force_login(other)
    assert client.get(location).status_code == 404


def test_todays_redemptions_with_totals(desk, fake_provider):
    body = check(desk)
    desk.post(redeem_url(), redeem_form(body, "20"))
    body = check(desk)
    fake_provider.fail_next("redeem", errors.RedeemRefused("nein"))
    desk.post(redeem_url(), redeem_form(body, "5"))
    body = check(desk)
    desk.post(redeem_url(), redeem_form(body, "7,50"))
    page = desk.get(reverse("vouchers:desk-today")).content.decode()
    assert re.search(r'id="total-redeemed">27.50 €', page)
    assert page.count("••••5678") == 3


# --- Review and manual resolution -----------------------------------------------------------------


@pytest.fixture
def unresolved(lina_campaign, other_campaign):
    mine = operation_claim(
        campaign=lina_campaign, user=None, kind="allocate", amount=Decimal("100")
    ).operation
    theirs = operation_claim(
        campaign=other_campaign, user=None, kind="purchase", amount=Decimal("5")
    ).operation
    ProviderOperation.objects.filter(pk__in=[mine.pk, theirs.pk]).update(state="needs_review")
    return mine, theirs


def test_review_list_is_for_admins_of_the_campaign(client, cashier, campaign_admin, unresolved):
    mine, theirs = unresolved
    client.force_login(cashier)
    assert client.get(reverse("vouchers:operation-review")).status_code == 403
    assert client.get(reverse("vouchers:operation-resolve", args=[mine.pk])).status_code == 403
    client.force_login(campaign_admin)
    page = client.get(reverse("vouchers:operation-review")).content.decode()
    assert reverse("vouchers:operation-resolve", args=[mine.pk]) in page
    assert reverse("vouchers:operation-resolve", args=[theirs.pk]) not in page
    assert client.get(reverse("vouchers:operation-resolve", args=[theirs.pk])).status_code == 404


def test_resolve_needs_a_reason_and_is_audited(client, campaign_admin, unresolved):
    mine, _ = unresolved
    client.force_login(campaign_admin)
    url = reverse("vouchers:operation-resolve", args=[mine.pk])
    response = client.post(url, {"state": "failed", "reason": ""})
    assert response.status_code == 200
    assert "Say why" in field_errors(response.content.decode())
    response = client.post(url, {"state": "failed", "reason": "Not in the Allsafe vault log"})
    assert response.status_code == 302
    mine.refresh_from_db()
    assert (mine.state, mine.resolved_by, mine.resolution_note) == (
        "failed",
        campaign_admin,
        "Not in the Allsafe vault log",
    )
    assert AuditEvent.objects.filter(action="operation.resolved", object_id=str(mine.pk)).exists()
    assert client.get(url).status_code == 404  # settled: no longer in the list
