"""A stock poll of the sandbox's seeded demo Allsafe campaign, through the real Allsafe client."""

from __future__ import annotations

from decimal import Decimal

import pytest

from vouchers.models import ProviderOperation, StockAlert, StockLevel, StockSnapshot
from vouchers.models.ledger import OperationKind, OperationState
from vouchers.models.stock import AlertKind, AlertState
from vouchers.services.stock import stock_poll

from ..support.sandbox import sandbox_allsafe_vault

pytestmark = pytest.mark.django_db

THRESHOLD = 10


@pytest.fixture
def demo_vault(sandbox):
    return sandbox_allsafe_vault(sandbox, low_stock_threshold=THRESHOLD)


def seeded_totals(sandbox) -> dict[tuple[str, Decimal], int]:
    """What the sandbox holds for the demo campaign, summed over its vaults (its own view)."""
    totals: dict[tuple[str, Decimal], int] = {}
    for row in sandbox.stock("demo-allsafe"):
        key = (row["vendor"], Decimal(str(row["value"])).quantize(Decimal("0.01")))
        totals[key] = totals.get(key, 0) + row["count"]
    return totals


def test_poll_of_the_demo_campaign_stores_the_snapshot_and_opens_matching_alerts(sandbox, demo_vault):
    expected = seeded_totals(sandbox)

    result = stock_poll(campaign_id=demo_vault.pk)

    assert result.status == "succeeded", result
    poll = ProviderOperation.objects.get(campaign=demo_vault, kind=OperationKind.POLL)
    assert poll.state == OperationState.SUCCEEDED
    snapshot = StockSnapshot.objects.get(campaign=demo_vault)
    stored = {(lvl.vendor, lvl.value): lvl.remaining for lvl in StockLevel.objects.filter(snapshot=snapshot)}
    assert stored == expected
    # The seed's mix (sandbox/seed.py): Takealot R100 in both vaults adds up; Checkers R100 is empty.
    assert stored[("Takealot", Decimal("100.00"))] == 30
    assert stored[("Checkers", Decimal("100.00"))] == 0

    open_alerts = StockAlert.objects.filter(campaign=demo_vault, state=AlertState.OPEN)
    low = {(a.vendor, a.value) for a in open_alerts.filter(kind=AlertKind.LOW_STOCK)}
    empty = {(a.vendor, a.value) for a in open_alerts.filter(kind=AlertKind.OUT_OF_STOCK)}
    # Out of stock supersedes low stock (issue 19): an empty item has only its out-of-stock alert.
    assert low == {key for key, count in expected.items() if 0 < count < THRESHOLD}
    assert empty == {key for key, count in expected.items() if count == 0}
    assert low == {
        ("Takealot", Decimal("250.00")),
        ("Netflorist", Decimal("200.00")),
    }
    assert empty == {("Checkers", Decimal("100.00"))}
    assert not open_alerts.filter(kind__in=[AlertKind.MISCONFIGURED, AlertKind.STALE]).exists()


def test_a_second_poll_opens_nothing_new_and_restocking_resolves(sandbox, demo_vault):
    stock_poll(campaign_id=demo_vault.pk)
    opened = StockAlert.objects.count()

    stock_poll(campaign_id=demo_vault.pk)
    assert StockAlert.objects.count() == opened  # open once, not once per poll

    sandbox.set_stock("Checkers", 100, 50)
    stock_poll(campaign_id=demo_vault.pk)

    checkers = StockAlert.objects.filter(campaign=demo_vault, vendor="Checkers", value=Decimal("100.00"))
    assert set(checkers.values_list("kind", "state")) == {(AlertKind.OUT_OF_STOCK, AlertState.RESOLVED)}
    assert StockSnapshot.objects.filter(campaign=demo_vault).count() == 3
