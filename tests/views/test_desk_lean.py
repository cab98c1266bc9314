"""The lean desk path (issue 17 item 2): few and constant statements per check, redeem and result
page, and the token card answered as the page's content alone when the till's script asks."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from vouchers.models import AuditEvent, Membership, ProviderOperation, ReconcileTicket
from vouchers.models.ledger import OperationKind, OperationState
from vouchers.providers import errors
from vouchers.values.codes import code_digest, mask_code

from ..support.factories import CampaignFactory
from .test_desk import CODE, desk_url, field_errors, redeem_form, redeem_url

pytestmark = pytest.mark.django_db

FRAGMENT = {"HTTP_X_DESK_FRAGMENT": "1"}


@pytest.fixture
def desk(client, cashier, fake_provider):
    fake_provider.add_token(CODE, "50.00")
    client.force_login(cashier)
    return client


def statements(queries) -> list[str]:
    """The statements sent, without the test transaction's savepoints (production has none:
    its atomic blocks are real transactions there)."""
    return [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


def grow_ledger(campaign, user, rows: int) -> None:
    """Older rows of this cashier and this very code: the worst case for the desk's reads."""
    ProviderOperation.objects.bulk_create(
        ProviderOperation(
            campaign=campaign,
            user=user,
            kind=OperationKind.REDEEM if n % 2 else OperationKind.CHECK,
            state=OperationState.SUCCEEDED,
            code_masked=mask_code(CODE),
            code_digest=code_digest(CODE),
            amount=Decimal("1.00") if n % 2 else None,
        )
        for n in range(rows)
    )


def one_round(client) -> tuple[int, int, int, int]:
    """Statements of: a check as the till's script sends it, a check without script, the redeem
    POST and its result page."""
    with CaptureQueriesContext(connection) as fragment_check:
        card = client.post(desk_url(), {"code": CODE}, **FRAGMENT).content.decode()
    with CaptureQueriesContext(connection) as page_check:
        client.post(desk_url(), {"code": CODE})
    with CaptureQueriesContext(connection) as redeem:
        response = client.post(redeem_url(), redeem_form(card, "1.00"))
    assert response.status_code == 302
    with CaptureQueriesContext(connection) as result:
        page = client.get(response["Location"])
    assert 'id="new-balance"' in page.content.decode()
    return tuple(len(statements(q)) for q in (fragment_check, page_check, redeem, result))


def test_statements_per_check_redeem_and_result_are_few_and_constant(
    client, cashier, lina_campaign, fake_provider
):
    fake_provider.add_token(CODE, "10000.00")
    client.force_login(cashier)
    client.get(desk_url())  # the session remembers the campaign once, not on every scan
    first = one_round(client)
    # user, groups + permissions (one UNION), the desk's campaigns, the check's ledger row; the
    # page without script also reads the auto-print setting (its preference form).
    fragment_check, page_check, redeem, result = first
    assert fragment_check <= 5  # before: 8 (two permission reads, groups, the campaign twice)
    assert page_check <= 5
    # user, access, campaigns, check + request token (one), lock, busy/stale (one), pending row,
    # reconcile ticket, then the pipeline's record: the claimed row's update that also deletes
    # its ticket, the audit row (before: 15; 12 with the record re-reading the row and deleting
    # the ticket apart; production also ran a savepoint and its release in the claim, see
    # test_a_redeem_is_two_commits_and_no_savepoint).
    assert redeem <= 10
    # user, access, the operation, the auto-print setting (before: 6).
    assert result <= 4

    # More campaigns, many more ledger rows of the same code: not one statement more.
    for n in range(3):
        Membership.objects.create(user=cashier, campaign=CampaignFactory(slug=f"more-{n}", name=f"More {n}"))
    grow_ledger(lina_campaign, cashier, 500)
    assert one_round(client) == first
    assert one_round(client) == first


def test_access_is_read_in_one_statement_per_request(client, cashier, lina_campaign, fake_provider):
    fake_provider.add_token(CODE, "50.00")
    client.force_login(cashier)
    with CaptureQueriesContext(connection) as queries:
        client.get(desk_url())
    permission_reads = [q for q in statements(queries) if "auth_permission" in q or "auth_group" in q]
    assert len(permission_reads) == 1, permission_reads
    assert "UNION" in permission_reads[0]


def test_the_fragment_is_the_pages_content_without_the_page_around_it(desk, fake_provider):
    response = desk.post(desk_url(), {"code": CODE}, **FRAGMENT)
    body = response.content.decode()
    assert response.status_code == 200
    assert response["X-Desk-Fragment"] == "1"
    assert "X-Desk-Fragment" in response["Vary"]  # never served from a cache for the other kind
    assert "<html" not in body and "mainnav" not in body
    assert "data-desk-fragment" in body and 'id="token-card"' in body
    # The redeem form in it works like the page's: CSRF token, one-time token, the check's id.
    assert 'name="csrfmiddlewaretoken"' in body
    redeemed = desk.post(redeem_url(), redeem_form(body, "20.00"))
    assert redeemed.status_code == 302
    assert fake_provider.calls["redeem"] == 1

    # Without the header: the whole page, as a browser without script gets it.
    page = desk.post(desk_url(), {"code": CODE})
    assert "<html" in page.content.decode() and "X-Desk-Fragment" not in page


def test_the_fragment_carries_refusals_and_provider_errors_too(desk, fake_provider):
    bad = desk.post(desk_url(), {"code": "ABC"}, **FRAGMENT)
    assert bad["X-Desk-Fragment"] == "1"
    assert "<html" not in bad.content.decode()
    assert "has 16 characters; this one has 3" in field_errors(bad.content.decode())
    assert fake_provider.calls["check"] == 0

    fake_provider.fail_next("check", errors.ProviderUnavailable())
    down = desk.post(desk_url(), {"code": CODE}, **FRAGMENT)
    assert 'id="provider-error"' in down.content.decode()
    assert "<html" not in down.content.decode()


def test_the_fragment_header_on_other_desk_pages_changes_nothing(desk, fake_provider):
    body = desk.post(desk_url(), {"code": CODE}).content.decode()
    # The redeem POST is a plain form submission: the header is ignored, the answer a redirect.
    redeemed = desk.post(redeem_url(), redeem_form(body, "5.00"), **FRAGMENT)
    assert redeemed.status_code == 302
    # A GET of the desk is the page.
    assert "<html" in desk.get(desk_url(), **FRAGMENT).content.decode()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_redeem_is_two_commits_and_no_savepoint(client, cashier, lina_campaign, fake_provider, monkeypatch):
    """Real transactions (no test transaction around them): the claim is committed before the
    call and the record after it, and neither needs a savepoint (services/pipeline.py)."""
    fake_provider.add_token(CODE, "50.00")
    client.force_login(cashier)
    card = client.post(desk_url(), {"code": CODE}, **FRAGMENT).content.decode()
    commits = []
    real_commit = connection.commit
    monkeypatch.setattr(
        connection, "commit", lambda: commits.append(fake_provider.calls["redeem"]) or real_commit()
    )
    with CaptureQueriesContext(connection) as redeem:
        response = client.post(redeem_url(), redeem_form(card, "1.00"))
    assert response.status_code == 302
    sent = [q["sql"] for q in redeem]
    assert not [q for q in sent if "SAVEPOINT" in q], sent
    # One commit before the provider call (the claim), one after (the record), none more.
    assert commits == [0, 1]
    # user, access, campaigns, check + token, lock, busy/stale, pending row, ticket; then the
    # record: the conditional UPDATE of the claimed row that also deletes its ticket, the audit row.
    assert len([q for q in sent if q not in ("BEGIN", "COMMIT")]) == 10, sent
    operation = ProviderOperation.objects.get(kind=OperationKind.REDEEM)
    assert operation.state == OperationState.SUCCEEDED
    assert operation.balance_after == Decimal("49.00")
    assert not ReconcileTicket.objects.filter(operation=operation).exists()  # dropped on success
    assert AuditEvent.objects.filter(action="token.redeemed", object_id=str(operation.pk)).count() == 1
