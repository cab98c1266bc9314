"""The till flow through the Django test client: where a cashier lands, what each state page
says (and does not say), the code field on every result page, and the day close."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from vouchers import staff_text
from vouchers.access import roles
from vouchers.models import ProviderOperation
from vouchers.providers import errors

from ..support.factories import PASSWORD, CampaignFactory, make_user
from .test_desk import CODE, check, desk_url, redeem_form, redeem_url

pytestmark = pytest.mark.django_db


def code_field(body: str) -> str:
    return re.search(r'<input[^>]*name="code"[^>]*data-code-input[^>]*>', body).group(0)


def redeem_op(campaign, user, state, amount="10.00", **fields) -> ProviderOperation:
    return ProviderOperation.objects.create(
        campaign=campaign,
        user=user,
        kind=ProviderOperation.Kind.REDEEM,
        state=state,
        code_masked="••••5678",
        code_digest="d" * 64,
        amount=amount,
        **fields,
    )


# --- Where a cashier lands ----------------------------------------------------------------------


def test_a_cashiers_login_lands_on_the_desk_of_their_last_campaign(client, lina_campaign):
    second = CampaignFactory(name="Second shop", slug="second-shop", provider="lina")
    till = make_user(roles.CASHIER, lina_campaign, second, username="till")
    redeem_op(second, till, "succeeded")
    response = client.post(reverse("login"), {"username": "till", "password": PASSWORD})
    assert response["Location"] == reverse("vouchers:desk-home")
    assert client.get(response["Location"])["Location"] == desk_url("second-shop")
    body = client.get(desk_url("second-shop")).content.decode()
    assert f'class="brand" href="{reverse("vouchers:desk-home")}"' in body  # the role's home


def test_other_roles_still_land_on_home(client, campaign_admin):
    response = client.post(reverse("login"), {"username": campaign_admin.username, "password": PASSWORD})
    assert response["Location"] == reverse("vouchers:home")


# --- Every state says one thing -------------------------------------------------------------------


def test_valid_token_is_a_big_state_and_focus_goes_to_the_redeem_step(client, cashier, fake_provider):
    fake_provider.add_token(CODE, "50.00", full_value_only=True)
    client.force_login(cashier)
    body = check(client)
    assert 'data-state="valid"' in body and "Valid token" in body
    assert "autofocus" not in code_field(body)  # the card is open: Enter redeems
    assert re.search(r'id="redeem-button" autofocus', body)
    assert 'class="money readonly"' in body


def test_invalid_token_shows_no_redemption_mode(client, cashier, fake_provider):
    fake_provider.add_token(CODE, "50.00", valid=False)
    client.force_login(cashier)
    body = check(client)
    assert 'data-state="invalid"' in body
    assert "partial redemption allowed" not in body and "full value only" not in body
    assert "autofocus" in code_field(body)  # nothing to do with this token: scan the next


def test_used_up_and_expired_tokens_say_so(client, cashier, fake_provider):
    fake_provider.add_token(CODE, "50.00", remaining="0.00")
    fake_provider.add_token("EXPD1234EFGH5678", "50.00", valid_until=timezone.localdate() - timedelta(days=2))
    client.force_login(cashier)
    assert 'data-state="used_up"' in check(client)
    assert 'data-state="expired"' in check(client, "EXPD1234EFGH5678")


def test_slip_carries_the_code_field_focused_and_a_print_key(client, cashier, fake_provider):
    fake_provider.add_token(CODE, "50.00")
    client.force_login(cashier)
    body = check(client)
    page = client.get(client.post(redeem_url(), redeem_form(body, "50"))["Location"]).content.decode()
    assert 'data-state="redeemed"' in page and "data-slip=" in page
    assert "autofocus" in code_field(page)
    assert 'aria-keyshortcuts="+"' in page
    assert reverse("vouchers:desk-check", kwargs={"campaign": "lina-shop"}) in page


def test_refusal_page_carries_the_code_field_and_no_unknown_warning(client, cashier, fake_provider):
    fake_provider.add_token(CODE, "50.00")
    client.force_login(cashier)
    body = check(client)
    fake_provider.fail_next("redeem", errors.RedeemRefused("Restwert nicht ausreichend"))
    page = client.get(client.post(redeem_url(), redeem_form(body, "20"))["Location"]).content.decode()
    assert 'data-state="not_redeemed"' in page and "autofocus" in code_field(page)
    assert "not known" not in page and "updates itself" not in page


def test_settled_not_redeemed_never_says_outcome_unknown(client, cashier, lina_campaign):
    """The redeem's answer got lost (error OutcomeUnknown), then the balance showed it was not
    applied: the page says "not redeemed", not the warning of the call it started with."""
    operation = redeem_op(
        lina_campaign,
        cashier,
        "failed",
        error_code="OutcomeUnknown",
        error_message="The provider did not answer in time.",
        resolved_at=timezone.now(),
        resolution_note="Balance unchanged at 50.00: not redeemed.",
    )
    client.force_login(cashier)
    page = client.get(reverse("vouchers:desk-operation", args=[operation.pk])).content.decode()
    assert "Not redeemed" in page and "balance is unchanged" in page
    assert "not known" not in page and "updates itself" not in page and "data-refresh-seconds" not in page
    assert "autofocus" in code_field(page)


def test_needs_review_is_its_own_settled_state(client, cashier, lina_campaign):
    operation = redeem_op(lina_campaign, cashier, "needs_review")
    client.force_login(cashier)
    page = client.get(reverse("vouchers:desk-operation", args=[operation.pk])).content.decode()
    assert 'data-state="review"' in page and "Needs a person" in page
    assert str(staff_text.NEEDS_REVIEW) in page
    assert "Outcome not known" not in page and "data-refresh-seconds" not in page


def test_unknown_page_carries_the_code_field(client, cashier, lina_campaign):
    operation = redeem_op(lina_campaign, cashier, "unknown")
    client.force_login(cashier)
    page = client.get(reverse("vouchers:desk-operation", args=[operation.pk])).content.decode()
    assert 'data-state="unknown"' in page and "autofocus" in code_field(page)


def test_check_timeout_says_nothing_was_changed(client, cashier, fake_provider, settings):
    settings.LINA_CHECK_READ_TIMEOUT = 5
    client.force_login(cashier)
    fake_provider.fail_next("check", errors.OutcomeUnknown())
    body = check(client)
    assert "LINA did not answer in time. Nothing was changed" in body and "5 seconds" in body
    assert 'data-state="not_checked"' in body


# --- Day close ------------------------------------------------------------------------------------


@pytest.fixture
def shift(client, cashier, lina_campaign, fake_provider):
    """A shift: two redeems, one refusal, one unknown outcome; plus a colleague's redeem."""
    fake_provider.add_token(CODE, "50.00")
    client.force_login(cashier)
    for amount in ("20", "7,50"):
        client.post(redeem_url(), redeem_form(check(client), amount))
    fake_provider.fail_next("redeem", errors.RedeemRefused("nein"))
    client.post(redeem_url(), redeem_form(check(client), "5"))
    redeem_op(lina_campaign, cashier, "unknown", amount="3.00")
    colleague = make_user(roles.CASHIER, lina_campaign, username="colleague")
    redeem_op(lina_campaign, colleague, "succeeded", amount="11.00")
    return client


def test_cashier_day_close_totals_equal_the_ledger(shift, cashier):
    page = shift.get(reverse("vouchers:desk-close")).content.decode()
    ledger = ProviderOperation.objects.filter(user=cashier, kind="redeem", state="succeeded")
    total = ledger.aggregate(total=Sum("amount"))["total"]
    assert total == Decimal("27.50")
    assert re.search(r'id="close-total">27.50 €', page)
    assert re.search(rf'id="close-count">{ledger.count()}<', page)
    assert re.search(r'id="close-open">1<', page)
    assert 'id="open-operations"' in page and "3.00 €" in page
    assert "data-print" in page

    response = shift.get(reverse("vouchers:desk-close-csv"))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[1][1:] == ["LINA shop", "2", "27.50", "1", "1"]


def test_admin_day_close_per_cashier_and_day(shift, client, campaign_admin):
    client.force_login(campaign_admin)
    today = timezone.localdate().isoformat()
    page = client.get(reverse("vouchers:day-close"), {"date_from": today, "date_to": today}).content.decode()
    assert re.search(r'id="close-total">38.50 €', page)  # both cashiers
    assert "colleague" in page and "cashier" in page
    response = client.get(reverse("vouchers:day-close-csv"), {"date_from": today, "date_to": today})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    by_cashier = {row[1]: row for row in rows[1:]}
    assert by_cashier["cashier"][3:5] == ["2", "27.50"] and by_cashier["colleague"][3:5] == ["1", "11.00"]


def test_admin_day_close_refuses_a_backwards_range(client, campaign_admin):
    client.force_login(campaign_admin)
    page = client.get(reverse("vouchers:day-close"), {"date_from": "2026-05-02", "date_to": "2026-05-01"})
    assert "before its start" in page.content.decode()


def test_auto_print_is_the_cashiers_own_setting(client, cashier, lina_campaign, fake_provider):
    from vouchers.models import DeskPreference

    fake_provider.add_token(CODE, "50.00")
    client.force_login(cashier)
    assert (
        "data-auto-print"
        not in client.get(
            client.post(redeem_url(), redeem_form(check(client), "5"))["Location"]
        ).content.decode()
    )
    response = client.post(reverse("vouchers:desk-preferences"), {"auto_print": "on", "next": desk_url()})
    assert response["Location"] == desk_url()
    assert DeskPreference.objects.get(user=cashier).auto_print
    page = client.get(client.post(redeem_url(), redeem_form(check(client), "5"))["Location"]).content.decode()
    assert "data-auto-print" in page and 'id="id_auto_print" checked' in page.replace(
        'checked="checked"', "checked"
    )
    # Off again; an outside "next" is not followed.
    response = client.post(reverse("vouchers:desk-preferences"), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("vouchers:desk-home")
    assert not DeskPreference.objects.get(user=cashier).auto_print
