"""The ledger for campaign admins (issue 19, item 5): scoped, filterable, sortable, CSV, linked."""

from __future__ import annotations

import csv
import io
import logging
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from tests.support.sales import lina_template  # noqa: F401  (a fixture)
from vouchers.models import ProviderOperation
from vouchers.services import sales as sales_svc
from vouchers.values.codes import code_digest, mask_code

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _language_restored():
    """A German request leaves German active in this thread (LocaleMiddleware never resets it);
    restore the language after each test so later tests read English."""
    with translation.override(translation.get_language()):
        yield


URL = reverse("vouchers:ledger-list")
CODE = "ABCD2345EFGH6789"
OTHER_CODE = "WXYZ2345EFGH1111"


def op(campaign, *, code="", kind="check", state="succeeded", user=None, duration_ms=100, **fields):
    return ProviderOperation.objects.create(
        campaign=campaign,
        user=user,
        kind=kind,
        state=state,
        code_masked=mask_code(code) if code else "",
        code_digest=code_digest(code) if code else "",
        duration_ms=duration_ms,
        **fields,
    )


@pytest.fixture
def ledger(campaign_admin, cashier, lina_campaign, other_campaign):
    return {
        "check": op(
            lina_campaign,
            code=CODE,
            user=cashier,
            duration_ms=40,
            request_data={"code": mask_code(CODE)},
            response_data={"card": {"remaining_value": "40.00", "valid": True}},
        ),
        "redeem": op(
            lina_campaign,
            code=CODE,
            kind="redeem",
            user=cashier,
            amount=Decimal("12.50"),
            duration_ms=900,
            request_data={"amount": "12.50"},
            response_data={"resp": "OK"},
        ),
        "failed": op(
            lina_campaign,
            code=OTHER_CODE,
            kind="redeem",
            state="failed",
            user=cashier,
            duration_ms=300,
            error_code="RedeemRefused",
            error_message="=cmd|' /C calc'!A0",
            response_data={"resp": "Err", "msg": f"token {OTHER_CODE} blocked"},
        ),
        "elsewhere": op(other_campaign, code=CODE, request_data={"note": "other shop secret"}),
    }


def rows_of(response) -> list[int]:
    return [row.record.pk for row in response.context["table"].page.object_list]


def test_campaign_admin_sees_their_campaigns_operations_masked(client, campaign_admin, ledger):
    client.force_login(campaign_admin)
    response = client.get(URL)
    assert response.status_code == 200
    assert sorted(rows_of(response)) == sorted(ledger[k].pk for k in ("check", "redeem", "failed"))
    body = response.content.decode()
    assert "other shop secret" not in body
    assert CODE not in body and OTHER_CODE not in body  # not even inside a provider's answer
    assert "code: " + mask_code(CODE) in body  # what was asked
    assert "card.remaining_value: 40.00" in body  # what came back
    headers = [str(column.header) for column in response.context["table"].columns]
    for heading in ("When", "Who", "Operation", "State", "Duration", "Asked", "Answer"):
        assert heading in headers
    assert "cashier" in body and "900 ms" in body and "RedeemRefused" in body


def test_filters_by_kind_state_campaign_and_person(client, campaign_admin, cashier, ledger, lina_campaign):
    client.force_login(campaign_admin)
    assert rows_of(client.get(URL, {"kind": "redeem", "state": "failed"})) == [ledger["failed"].pk]
    assert len(rows_of(client.get(URL, {"campaign": lina_campaign.pk, "user": cashier.pk}))) == 3
    assert rows_of(client.get(URL, {"reference": ledger["redeem"].pk})) == [ledger["redeem"].pk]
    # Another campaign's operation cannot be reached by its reference.
    assert rows_of(client.get(URL, {"reference": ledger["elsewhere"].pk})) == []


def test_every_operation_on_the_same_code_without_the_code_in_the_address(client, campaign_admin, ledger):
    client.force_login(campaign_admin)
    found = rows_of(client.get(URL, {"same_code_as": ledger["check"].pk}))
    assert sorted(found) == sorted([ledger["check"].pk, ledger["redeem"].pk])  # not the other shop's
    assert rows_of(client.get(URL, {"same_code_as": ledger["elsewhere"].pk})) == []


SEARCH_URL = reverse("vouchers:ledger-search")


def shown_messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def test_a_typed_code_opens_the_ledger_on_its_newest_operation_never_in_the_address(
    client, campaign_admin, ledger, caplog
):
    client.force_login(campaign_admin)
    assert 'action="' + SEARCH_URL + '"' in client.get(URL).content.decode()  # the form is on the page
    typed = "abcd-2345 efgh-6789"  # separators and case do not matter
    with caplog.at_level(logging.DEBUG):
        response = client.post(SEARCH_URL, {"code": typed})
        assert response.status_code == 302
        location = response["Location"]
        # The newest of the viewer's operations on the code, never the other shop's (newer) one.
        assert location == f"{URL}?same_code_as={ledger['redeem'].pk}"
        page = client.get(location)
    assert CODE not in location and "ABCD" not in location
    assert CODE not in caplog.text and typed not in caplog.text
    assert sorted(rows_of(page)) == sorted([ledger["check"].pk, ledger["redeem"].pk])
    assert CODE not in page.content.decode()


def test_a_code_search_needs_a_post_with_csrf(campaign_admin, ledger):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(campaign_admin)
    assert strict.post(SEARCH_URL, {"code": CODE}).status_code == 403
    assert strict.get(SEARCH_URL, {"code": CODE}).status_code == 405


def test_unknown_foreign_and_malformed_codes_say_so(client, campaign_admin, ledger, other_campaign):
    only_elsewhere = "QQQQ2345EFGH2222"
    op(other_campaign, code=only_elsewhere)
    client.force_login(campaign_admin)
    for code in ("ZZZZ-ZZZZ-ZZZZ-ZZZZ", only_elsewhere):
        response = client.post(SEARCH_URL, {"code": code}, follow=True)
        assert response.redirect_chain[-1][0] == URL
        assert shown_messages(response) == [("warning", "No operation of your campaigns has this code.")]
    for code in ("<script>", ""):
        response = client.post(SEARCH_URL, {"code": code}, follow=True)
        assert response.redirect_chain[-1][0] == URL
        assert [level for level, _text in shown_messages(response)] == ["error"]
        assert "message-error" in response.content.decode()  # shown in the error style


def test_code_search_in_german(client, campaign_admin, ledger):
    client.force_login(campaign_admin)
    client.cookies["django_language"] = "de"
    page = client.get(URL, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Vollständiger Code" in page and "Nach Code suchen" in page
    unknown = client.post(SEARCH_URL, {"code": "ZZZZZZZZ"}, HTTP_ACCEPT_LANGUAGE="de", follow=True)
    assert shown_messages(unknown) == [("warning", "Kein Vorgang Ihrer Kampagnen hat diesen Code.")]
    bad = client.post(SEARCH_URL, {"code": "<b>"}, HTTP_ACCEPT_LANGUAGE="de", follow=True)
    assert shown_messages(bad) == [
        (
            "error",
            "Ein Code besteht nur aus Buchstaben und Ziffern (Leerzeichen und Bindestriche werden ignoriert).",
        )
    ]


def test_sortable_by_duration(client, campaign_admin, ledger):
    client.force_login(campaign_admin)
    durations = [
        ProviderOperation.objects.get(pk=pk).duration_ms
        for pk in rows_of(client.get(URL, {"sort": "-duration_ms"}))
    ]
    assert durations == [900, 300, 40]


def test_csv_follows_filters_and_sort_masks_codes_and_neutralises_formulas(client, campaign_admin, ledger):
    client.force_login(campaign_admin)
    response = client.get(
        URL, {"export": "csv", "sort": "duration_ms", "campaign": ledger["check"].campaign_id}
    )
    assert response["Content-Disposition"] == 'attachment; filename="ledger.csv"'
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:5] == ["when", "reference", "campaign", "who", "operation"]
    assert [int(row[1]) for row in rows[1:]] == [ledger["check"].pk, ledger["failed"].pk, ledger["redeem"].pk]
    assert CODE not in text and OTHER_CODE not in text and "other shop secret" not in text
    assert all(not cell.startswith("=") for row in rows for cell in row)


def test_bad_filter_input_is_a_page_not_an_error(client, campaign_admin, ledger):
    client.force_login(campaign_admin)
    for params in (
        {"since": "not-a-date", "campaign": "x" * 500},
        {"reference": "9" * 40, "same_code_as": "-1"},
        {"reference": "1.5", "sort": "nonsense", "per_page": "-3"},
        {"user": "abc", "kind": "nothing", "state": "\x00"},
    ):
        assert client.get(URL, params).status_code == 200, params
        export = client.get(URL, {**params, "export": "csv"})
        assert export.status_code == 200, params
        b"".join(export.streaming_content)  # the rows are read while streaming: no error there either


def test_query_count_does_not_grow_with_rows(client, campaign_admin, cashier, lina_campaign, ledger):
    client.force_login(campaign_admin)
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    for n in range(20):
        op(lina_campaign, code=f"QQQQ2345EFGH{n:04d}", user=cashier)
    with CaptureQueriesContext(connection) as many:
        client.get(URL)
    assert len(many) == len(few)


def test_cashier_and_marketing_get_403_and_no_nav_entry(client, cashier, marketing):
    for user in (cashier, marketing):
        client.force_login(user)
        assert client.get(URL).status_code == 403
        assert URL not in client.get(reverse("vouchers:home")).content.decode()


def test_nav_entry_for_campaign_admins(client, campaign_admin):
    client.force_login(campaign_admin)
    assert f'href="{URL}"' in client.get(reverse("vouchers:home")).content.decode()


def test_ledger_in_german(client, campaign_admin, ledger):
    client.force_login(campaign_admin)
    client.cookies["django_language"] = "de"
    body = client.get(URL, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "<h1>Journal</h1>" in body
    assert "Dauer" in body and "Gefragt" in body and "Antwort" in body and "fehlgeschlagen" in body


# --- Links to the ledger ----------------------------------------------------------------------------


def test_provider_health_links_each_campaign_to_its_ledger(client, campaign_admin, lina_campaign, ledger):
    client.force_login(campaign_admin)
    body = client.get(reverse("vouchers:provider-health")).content.decode()
    assert f'href="{URL}?campaign={lina_campaign.pk}"' in body


def test_sale_page_links_to_the_ledger_for_admins_only(
    client,
    campaign_admin,
    marketing,
    fake_provider,
    lina_template,  # noqa: F811
):
    sale = sales_svc.gift_token_sell(
        campaign=lina_template.campaign,
        user=marketing,
        request_token=sales_svc.new_request_token(),
        amount=Decimal("25"),
        template=lina_template,
    )
    page = reverse("vouchers:sale-detail", args=[sale.pk])
    client.force_login(campaign_admin)
    body = client.get(page).content.decode()
    assert f'href="{URL}?reference={sale.operation.pk}"' in body
    assert f'href="{URL}?same_code_as={sale.operation.pk}"' in body
    found = rows_of(client.get(URL, {"same_code_as": sale.operation.pk}))
    assert found == [sale.operation.pk]
    client.force_login(marketing)  # sells, but does not read the ledger
    assert URL not in client.get(page).content.decode()


def test_resolve_and_review_pages_link_to_the_ledger(client, campaign_admin, cashier, lina_campaign):
    unknown = op(lina_campaign, code=CODE, kind="redeem", state="unknown", user=cashier, amount=Decimal("5"))
    client.force_login(campaign_admin)
    resolve = client.get(reverse("vouchers:operation-resolve", args=[unknown.pk])).content.decode()
    assert f'href="{URL}?same_code_as={unknown.pk}"' in resolve
    review = client.get(reverse("vouchers:operation-review")).content.decode()
    assert f'href="{URL}?same_code_as={unknown.pk}"' in review
