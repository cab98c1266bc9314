"""Selling services with the fake provider: claim → call → record, lost answers, bulk runs."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.support.sales import csv_file
from vouchers.models import AuditEvent, BulkSale, ProviderOperation, Sale
from vouchers.models.sales import BulkSaleState
from vouchers.providers.errors import (
    AuthFailed,
    InvalidVendor,
    Misconfigured,
    OutOfStock,
    ProviderUnavailable,
    ValidationFailed,
)
from vouchers.security.fields import Ciphertext
from vouchers.selectors.sales import availability_latest, bulk_sale_progress
from vouchers.services import bulk_sales as bulk_svc
from vouchers.services import sales as svc
from vouchers.services.refusals import Refusal

pytestmark = pytest.mark.django_db


def sell(campaign, user, template, token=None, **kwargs):
    kwargs.setdefault("amount", Decimal("25.00"))
    return svc.gift_token_sell(
        campaign=campaign,
        user=user,
        request_token=token or svc.new_request_token(),
        template=template,
        **kwargs,
    )


# --- Gift tokens ---------------------------------------------------------------------------------


def test_sell_records_operation_sale_and_audit_without_full_code_in_ledger(
    fake_provider, lina_campaign, marketing, lina_template
):
    fake_provider.purchase_qrcode = "iVBORw0KGgo="
    sale = sell(
        lina_campaign, marketing, lina_template, layout=1, from_name="Anna", for_name="Ben", email="b@x.de"
    )
    assert sale.state == "succeeded"
    operation = sale.operation
    code = fake_provider.sold[0].code
    assert sale.full_code == code and sale.code_masked == "••••" + code[-4:]
    assert sale.layout_url.endswith(code) and sale.qrcode_png_base64 == "iVBORw0KGgo="
    assert operation.kind == "purchase" and operation.code_masked == sale.code_masked
    # The ledger never holds the full code, the QR image or a link that carries the code.
    assert code not in str(operation.response_data) and code not in str(operation.request_data)
    assert "qrcode" not in operation.response_data
    request = fake_provider.requests[0][1]
    assert (request.template_hash, request.layout, request.from_name, request.for_name) == (
        "tpl-hash-standard",
        1,
        "Anna",
        "Ben",
    )
    event = AuditEvent.objects.get(action="sale.gift_token_sold")
    assert code not in event.summary and event.object_id == str(sale.pk)


def test_names_are_not_sent_without_a_layout(fake_provider, lina_campaign, marketing, lina_template):
    sale = sell(lina_campaign, marketing, lina_template, layout=None, from_name="Anna", for_name="Ben")
    request = fake_provider.requests[0][1]
    assert request.layout is None and request.from_name == "" and request.for_name == ""
    assert sale.from_name == "" and sale.layout is None


def test_same_request_token_sells_once(fake_provider, lina_campaign, marketing, lina_template):
    first = sell(lina_campaign, marketing, lina_template, token="a" * 32)
    second = sell(lina_campaign, marketing, lina_template, token="a" * 32, amount=Decimal("99.00"))
    assert first.pk == second.pk
    assert fake_provider.calls["purchase"] == 1
    assert Sale.objects.count() == 1 and ProviderOperation.objects.count() == 1


def test_lost_answer_is_needs_review_and_never_resent(fake_provider, lina_campaign, marketing, lina_template):
    fake_provider.lose_answer_next("purchase")
    sale = sell(lina_campaign, marketing, lina_template, token="b" * 32)
    assert sale.state == "needs_review"
    assert sale.operation.error_code == "OutcomeUnknown"
    again = sell(lina_campaign, marketing, lina_template, token="b" * 32)
    assert again.pk == sale.pk and fake_provider.calls["purchase"] == 1
    assert AuditEvent.objects.filter(action="sale.needs_review").count() == 1


def test_sale_state_follows_a_manual_resolution_of_its_operation(
    fake_provider, lina_campaign, marketing, lina_template
):
    fake_provider.lose_answer_next("purchase")
    sale = sell(lina_campaign, marketing, lina_template)
    # The desk's resolve service changes only the operation; the sale shows it with no copy to update.
    ProviderOperation.objects.filter(pk=sale.operation_id).update(state="failed", resolved_at=timezone.now())
    assert Sale.objects.get(pk=sale.pk).state == "failed"
    assert Sale.objects.in_state("failed").count() == 1


def test_unexpected_exception_during_the_call_is_needs_review(
    fake_provider, lina_campaign, marketing, lina_template, monkeypatch
):
    def boom(request):
        raise RuntimeError("socket exploded")

    monkeypatch.setattr(fake_provider, "purchase", boom)
    sale = sell(lina_campaign, marketing, lina_template)
    assert sale.state == "needs_review"


@pytest.mark.parametrize(
    "error", [ValidationFailed("status error"), ProviderUnavailable(), AuthFailed(), Misconfigured()]
)
def test_definite_errors_are_failed_with_their_message(
    fake_provider, lina_campaign, marketing, lina_template, error
):
    fake_provider.fail_next("purchase", error)
    sale = sell(lina_campaign, marketing, lina_template)
    assert sale.state == "failed"
    assert sale.operation.error_code == error.code
    assert sale.operation.error_message == error.message
    assert sale.full_code == ""


def test_unreadable_credentials_fail_before_any_call(fake_provider, lina_campaign, marketing, lina_template):
    lina_campaign.api_password = Ciphertext("not-a-fernet-token")  # as if stored under a lost key
    lina_campaign.save()
    sale = sell(lina_campaign, marketing, lina_template)
    assert sale.state == "failed" and sale.operation.error_code == "Misconfigured"
    assert fake_provider.calls["purchase"] == 0


def test_campaign_not_live_is_refused_before_a_claim(fake_provider, lina_campaign, marketing, lina_template):
    lina_campaign.is_live = False
    lina_campaign.save()
    with pytest.raises(Refusal):
        sell(lina_campaign, marketing, lina_template)
    assert ProviderOperation.objects.count() == 0 and fake_provider.calls["purchase"] == 0


def test_template_of_another_campaign_is_refused(fake_provider, other_campaign, marketing, lina_template):
    with pytest.raises(Refusal):
        sell(other_campaign, marketing, lina_template)


# --- Digital vouchers ----------------------------------------------------------------------------


def test_availability_refresh_is_logged_and_read_back(fake_provider, allsafe_campaign, marketing):
    fake_provider.set_stock("Takealot", 100, 5)
    fake_provider.set_stock("Uber", 50, 0)
    assert availability_latest(campaign=allsafe_campaign).items == ()
    snapshot = svc.availability_refresh(campaign=allsafe_campaign, user=marketing)
    assert [(i.vendor, i.value, i.remaining) for i in snapshot.items] == [
        ("Takealot", Decimal("100"), 5),
        ("Uber", Decimal("50"), 0),
    ]
    assert availability_latest(campaign=allsafe_campaign).items == snapshot.items
    assert ProviderOperation.objects.get().kind == "poll"


def test_allocate_form_reads_what_the_scheduled_poll_stored(fake_provider, allsafe_campaign):
    from vouchers.services.stock import stock_poll

    fake_provider.set_stock("Takealot", 100, 7)
    stock_poll(campaign_id=allsafe_campaign.pk)
    items = availability_latest(campaign=allsafe_campaign).items
    assert [(i.vendor, i.value, i.remaining) for i in items] == [("Takealot", Decimal("100"), 7)]


def test_availability_failure_is_logged_and_raised(fake_provider, allsafe_campaign, marketing):
    fake_provider.fail_next("availability", Misconfigured(status_code=491))
    with pytest.raises(Refusal) as refused:
        svc.availability_refresh(campaign=allsafe_campaign, user=marketing)
    assert refused.value.code == "Misconfigured"
    assert ProviderOperation.objects.get(kind="poll").state == "failed"


def test_allocate_keeps_every_field_on_the_sale_and_masks_the_pin_in_the_ledger(
    fake_provider, allsafe_campaign, marketing
):
    fake_provider.set_stock("Takealot", 100, 2)
    sale = svc.digital_voucher_allocate(
        campaign=allsafe_campaign,
        user=marketing,
        request_token="c" * 32,
        vendor="Takealot",
        value=Decimal("100"),
    )
    assert sale.state == "succeeded"
    pin = fake_provider.allocated[0].code
    assert sale.full_code == pin and sale.voucher_fields["serial"].startswith("S")
    assert sale.voucher_fields["reference"] == "c" * 32
    assert pin not in str(sale.operation.response_data)
    assert sale.operation.response_data["serial"] == sale.voucher_fields["serial"]
    assert fake_provider.requests[0][1].reference == "c" * 32


@pytest.mark.parametrize("error", [OutOfStock(status_code=492), InvalidVendor(status_code=496)])
def test_allocate_rejections_are_failed(fake_provider, allsafe_campaign, marketing, error):
    fake_provider.fail_next("allocate", error)
    sale = svc.digital_voucher_allocate(
        campaign=allsafe_campaign, user=marketing, request_token="d" * 32, vendor="X", value=Decimal("10")
    )
    assert sale.state == "failed" and sale.operation.error_code == error.code


def test_allocate_lost_answer_needs_review_and_is_never_resent(fake_provider, allsafe_campaign, marketing):
    fake_provider.set_stock("Takealot", 100, 2)
    fake_provider.lose_answer_next("allocate")
    for _ in range(2):
        sale = svc.digital_voucher_allocate(
            campaign=allsafe_campaign,
            user=marketing,
            request_token="e" * 32,
            vendor="Takealot",
            value=Decimal("100"),
        )
    assert sale.state == "needs_review"
    assert fake_provider.calls["allocate"] == 1


# --- Bulk sales ----------------------------------------------------------------------------------


def make_bulk(campaign, user, data):
    return bulk_svc.bulk_sale_create(campaign=campaign, user=user, filename="batch.csv", data=data)


def test_bulk_create_validates_every_line_and_sells_nothing(
    fake_provider, lina_campaign, marketing, lina_template, plain_template
):
    data = csv_file(
        "25.00,Standard,,,,",
        "3.00,Standard,,,,",  # below the campaign minimum (5)
        "25.005,Standard,,,,",
        "abc,Standard,,,,",
        "25,Nope,,,,",
        "25,Plain,1,,,",  # Plain has no layouts
        "25,Standard,,Anna,,",  # names without a layout
        "25,Standard,2,=cmd|' /C calc'!A0,Ben,",
        "25,standard,,,,not-an-email",
        "25,Standard,,,,,surplus",
    )
    bulk = make_bulk(lina_campaign, marketing, data)
    rows = {r.line_number: r for r in bulk.rows.all()}
    assert [n for n, r in rows.items() if r.valid] == [2, 9]
    assert "between 5.00 € and 500.00 €" in rows[3].errors[0]
    assert "2 decimal places" in rows[4].errors[0]
    assert "is not an amount" in rows[5].errors[0]
    assert "no active template “Nope”" in rows[6].errors[0]
    assert "has no layouts" in rows[7].errors[0]
    assert "layout only" in rows[8].errors[0]
    assert "not a valid e-mail" in rows[10].errors[0]
    assert "more values" in rows[11].errors[0]
    assert rows[9].from_name.startswith("=cmd")  # kept as typed; neutralised in exports
    assert fake_provider.calls["purchase"] == 0 and Sale.objects.count() == 0
    assert len({r.request_token for r in rows.values()}) == len(rows)


def run(bulk):
    return bulk_svc.bulk_sale_run(bulk_sale_id=bulk.pk)


def test_bulk_run_sells_valid_rows_once_even_when_run_again(
    fake_provider, lina_campaign, marketing, lina_template, django_capture_on_commit_callbacks
):
    bulk = make_bulk(
        lina_campaign, marketing, csv_file("25,Standard,,,,", "bad,Standard,,,,", "30,Standard,1,A,B,")
    )
    with django_capture_on_commit_callbacks() as callbacks:
        bulk_svc.bulk_sale_start(bulk_sale=bulk, user=marketing)
        bulk_svc.bulk_sale_start(bulk_sale=bulk, user=marketing)  # a double click queues once
    assert len(callbacks) == 1
    assert run(bulk) == bulk_svc.RunOutcome.WORKED
    bulk.refresh_from_db()
    assert bulk.state == BulkSaleState.FINISHED and fake_provider.calls["purchase"] == 2
    progress = bulk_sale_progress(bulk_sale=bulk)
    assert (progress["done"], progress["succeeded"], progress["invalid"], progress["percent"]) == (
        2,
        2,
        1,
        100,
    )
    # Running it again (a redelivered message, a re-run) sells nothing more.
    BulkSale.objects.filter(pk=bulk.pk).update(state=BulkSaleState.QUEUED)
    assert run(bulk) == bulk_svc.RunOutcome.WORKED
    assert fake_provider.calls["purchase"] == 2 and Sale.objects.count() == 2


def test_bulk_run_skips_while_another_run_holds_the_lease(
    fake_provider, lina_campaign, marketing, lina_template
):
    bulk = make_bulk(lina_campaign, marketing, csv_file("25,Standard,,,,"))
    BulkSale.objects.filter(pk=bulk.pk).update(
        state=BulkSaleState.RUNNING, lease_owner="other", lease_until=timezone.now() + timedelta(minutes=5)
    )
    assert run(bulk) == bulk_svc.RunOutcome.BUSY
    assert fake_provider.calls["purchase"] == 0


def test_the_task_retries_later_while_another_run_holds_the_lease(lina_campaign, marketing, lina_template):
    from celery.exceptions import Retry

    from vouchers.tasks.sales import bulk_sale_run_task

    bulk = make_bulk(lina_campaign, marketing, csv_file("25,Standard,,,,"))
    BulkSale.objects.filter(pk=bulk.pk).update(
        state=BulkSaleState.RUNNING, lease_owner="other", lease_until=timezone.now() + timedelta(minutes=5)
    )
    with pytest.raises(Retry):
        bulk_sale_run_task.apply(args=[bulk.pk], throw=True)
    BulkSale.objects.filter(pk=bulk.pk).update(state=BulkSaleState.FINISHED)
    assert bulk_sale_run_task.apply(args=[bulk.pk]).get() == bulk_svc.RunOutcome.IDLE


def test_bulk_run_after_a_crash_sends_the_interrupted_row_to_review_and_sells_the_rest(
    fake_provider, lina_campaign, marketing, lina_template
):
    bulk = make_bulk(
        lina_campaign, marketing, csv_file("25,Standard,,,,", "26,Standard,,,,", "27,Standard,,,,")
    )
    row = bulk.rows.get(line_number=2)
    # A run claimed line 2 and died during the provider call: the claim is there, no answer.
    svc._claim_sale(
        campaign=lina_campaign,
        user=marketing,
        kind="gift_token",
        request_token=row.request_token,
        amount=Decimal("25.00"),
        request_data={},
        sale_fields={"template": lina_template},
        bulk_row=row,
    )
    BulkSale.objects.filter(pk=bulk.pk).update(
        state=BulkSaleState.RUNNING, lease_owner="dead", lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert run(bulk) == bulk_svc.RunOutcome.WORKED
    row.refresh_from_db()
    assert row.sale.state == "needs_review" and "not sold again" in row.message
    assert fake_provider.calls["purchase"] == 2  # lines 3 and 4 only
    assert bulk_sale_progress(bulk_sale=bulk)["review"] == 1


def test_bulk_cancel_stops_after_the_current_row(
    fake_provider, lina_campaign, marketing, lina_template, monkeypatch
):
    bulk = make_bulk(lina_campaign, marketing, csv_file(*["25,Standard,,,,"] * 5))
    BulkSale.objects.filter(pk=bulk.pk).update(state=BulkSaleState.QUEUED)
    original = fake_provider.purchase

    def purchase_then_cancel(request):
        result = original(request)
        if fake_provider.calls["purchase"] == 2:
            bulk_svc.bulk_sale_cancel(bulk_sale=bulk, user=marketing)  # clicked while row 2 is being sold
        return result

    monkeypatch.setattr(fake_provider, "purchase", purchase_then_cancel)
    run(bulk)
    bulk.refresh_from_db()
    assert bulk.state == BulkSaleState.CANCELLED
    assert fake_provider.calls["purchase"] == 2 and Sale.objects.count() == 2


def test_bulk_stops_on_errors_that_hit_every_row_and_resumes_later(
    fake_provider, lina_campaign, marketing, lina_template, django_capture_on_commit_callbacks
):
    bulk = make_bulk(lina_campaign, marketing, csv_file(*["25,Standard,,,,"] * 3))
    BulkSale.objects.filter(pk=bulk.pk).update(state=BulkSaleState.QUEUED)
    fake_provider.fail_next("purchase", AuthFailed())
    run(bulk)
    bulk.refresh_from_db()
    assert bulk.state == BulkSaleState.FINISHED and "Stopped at line 2" in bulk.note
    assert bulk_sale_progress(bulk_sale=bulk)["resumable"]
    assert fake_provider.calls["purchase"] == 1
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        bulk_svc.bulk_sale_resume(bulk_sale=bulk, user=marketing)
    assert len(callbacks) == 1
    run(bulk)
    bulk.refresh_from_db()
    assert bulk.state == BulkSaleState.FINISHED and bulk.note == ""
    assert fake_provider.calls["purchase"] == 3  # the failed row is not retried; the two others are sold
    progress = bulk_sale_progress(bulk_sale=bulk)
    assert (progress["succeeded"], progress["failed"]) == (2, 1)


def test_bulk_start_refuses_a_file_without_valid_rows(fake_provider, lina_campaign, marketing, lina_template):
    bulk = make_bulk(lina_campaign, marketing, csv_file("x,Standard,,,,"))
    with pytest.raises(Refusal):
        bulk_svc.bulk_sale_start(bulk_sale=bulk, user=marketing)


def test_template_save_and_delete_are_audited(campaign_admin, lina_campaign):
    from vouchers.models import SaleTemplate

    template = SaleTemplate(campaign=lina_campaign, name="Gold", template_hash="h", allowed_layouts=[3, 1, 3])
    svc.sale_template_save(template=template, actor=campaign_admin, changed_fields=["name"])
    assert template.allowed_layouts == [1, 3]
    svc.sale_template_delete(template=template, actor=campaign_admin)
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["sale_template.created", "sale_template.deleted"]


def test_a_layout_link_that_is_not_a_web_address_is_dropped(
    fake_provider, lina_campaign, marketing, lina_template, monkeypatch
):
    from vouchers.providers.base import PurchaseResult

    monkeypatch.setattr(
        fake_provider,
        "purchase",
        lambda request: PurchaseResult(
            code="ABCD1234EFGH5678", amount=request.amount, layout_url="javascript:alert(1)"
        ),
    )
    sale = sell(lina_campaign, marketing, lina_template, layout=1)
    assert sale.state == "succeeded" and sale.layout_url == ""
