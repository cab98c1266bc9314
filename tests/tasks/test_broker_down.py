"""Broker down is a message, not a 500 (issue 15, item 3).

The project's real Celery app is pointed at a Redis URL where nothing listens. Starting (or
resuming) a bulk sale then answers at once with "could not be queued, nothing was sold", the
batch stays queued with a lease that has already run out — so it shows as stalled with a Resume
button — and the scheduled sweep sends it once the broker is back. Transactional tests: the
enqueue runs on commit, as in production.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.processes import free_port
from tests.support.sales import csv_file, lina_template  # noqa: F401 (fixture)
from vouchers.models import AuditEvent, BulkSale, Sale
from vouchers.models.sales import BulkSaleState
from vouchers.selectors.sales import bulk_sale_is_stalled
from vouchers.services import bulk_sales as bulk_svc
from vouchers.services.bulk_sales import bulk_sales_resume_stalled

from ..views.test_sales import upload

pytestmark = pytest.mark.django_db(transaction=True)


def _reset_pools(app) -> None:
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def dead_broker():
    """The real Celery app, configured to a broker URL on a port where nothing listens."""
    from portal.celery import app

    old = app.conf.broker_url
    _reset_pools(app)
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    yield app
    _reset_pools(app)
    app.conf.broker_url = old


@pytest.fixture
def silent_broker():
    """A broker host that accepts connections and never answers (a packet-dropping firewall or a
    half-open NAT entry looks the same to the client), with the transport's socket timeouts set
    the way portal/settings.py sets them for a Redis broker, only shorter to keep the test quick."""
    from portal.celery import app

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    old_url, old_options = app.conf.broker_url, app.conf.broker_transport_options
    _reset_pools(app)
    app.conf.broker_url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    app.conf.broker_transport_options = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    yield app
    _reset_pools(app)
    app.conf.broker_url, app.conf.broker_transport_options = old_url, old_options
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


@pytest.fixture
def draft(client, marketing, lina_template, fake_provider):  # noqa: F811
    client.force_login(marketing)
    response = upload(client, csv_file("25,Standard,,,,", "30,Standard,,,,"))
    assert response.status_code == 302
    return BulkSale.objects.get()


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def test_starting_with_the_broker_down_says_so_and_the_sweep_sends_it_later(
    client, draft, dead_broker, fake_provider, monkeypatch
):
    started = time.monotonic()
    response = client.post(reverse("vouchers:bulksale-start", args=[draft.pk]), follow=True)
    elapsed = time.monotonic() - started

    assert response.status_code == 200  # the detail page, not a server error
    assert elapsed < 2.0, f"{elapsed:.2f} s"
    said = _messages(response)
    assert "could not be queued" in said and "Nothing was sold" in said
    page = response.content.decode()
    assert "data-bulk-resume-form hidden" not in page  # Resume is offered at once
    bulk = BulkSale.objects.get(pk=draft.pk)
    assert bulk.state == BulkSaleState.QUEUED and bulk.lease_owner == ""
    assert bulk_sale_is_stalled(bulk) and "could not be queued" in bulk.note
    assert not Sale.objects.exists() and fake_provider.calls["purchase"] == 0
    assert AuditEvent.objects.filter(action="bulk_sale.queue_failed", object_id=str(bulk.pk)).exists()
    progress = client.get(reverse("vouchers:bulksale-progress", args=[bulk.pk])).json()
    assert progress["stalled"] and progress["state"] == "queued"

    # A sweep while the broker is still down: not queued, still stalled for the next sweep.
    assert bulk_sales_resume_stalled() == 0
    assert bulk_sale_is_stalled(BulkSale.objects.get(pk=bulk.pk))

    # The broker is back: the next sweep sends it, and the run sells every row once.
    sent = []
    monkeypatch.setattr(
        "vouchers.tasks.sales.bulk_sale_run_task.apply_async", lambda args, **options: sent.append(args[0])
    )
    assert bulk_sales_resume_stalled() == 1
    assert sent == [bulk.pk]
    assert not bulk_sale_is_stalled(BulkSale.objects.get(pk=bulk.pk))
    assert bulk_svc.bulk_sale_run(bulk_sale_id=bulk.pk) == "worked"
    bulk.refresh_from_db()
    assert bulk.state == BulkSaleState.FINISHED and bulk.note == ""
    assert Sale.objects.count() == 2 and fake_provider.calls["purchase"] == 2


def test_resume_with_the_broker_down_says_so_too(client, draft, dead_broker, fake_provider):
    BulkSale.objects.filter(pk=draft.pk).update(
        state=BulkSaleState.RUNNING, lease_owner="dead-worker", lease_until=timezone.now()
    )
    response = client.post(reverse("vouchers:bulksale-resume", args=[draft.pk]), follow=True)
    assert response.status_code == 200
    assert "could not be queued" in _messages(response)
    bulk = BulkSale.objects.get(pk=draft.pk)
    assert bulk.state == BulkSaleState.QUEUED and bulk_sale_is_stalled(bulk)
    assert fake_provider.calls["purchase"] == 0


def test_a_normal_start_gives_no_warning_and_is_not_stalled(client, draft, monkeypatch):
    sent = []
    monkeypatch.setattr(
        "vouchers.tasks.sales.bulk_sale_run_task.apply_async", lambda args, **options: sent.append(args[0])
    )
    response = client.post(reverse("vouchers:bulksale-start", args=[draft.pk]), follow=True)
    assert "could not be queued" not in _messages(response)
    assert sent == [draft.pk]
    bulk = BulkSale.objects.get(pk=draft.pk)
    assert bulk.state == BulkSaleState.QUEUED and not bulk_sale_is_stalled(bulk)


def test_worker_fan_outs_log_instead_of_failing(dead_broker, allsafe_campaign, caplog):
    """A dispatch whose polls cannot be queued ends normally; the next interval polls again."""
    from vouchers.tasks.stock import stock_poll_dispatch_task

    result = stock_poll_dispatch_task.apply()
    assert result.successful(), result.traceback
    assert "Could not queue vouchers.tasks.stock.stock_poll_chunk_task" in caplog.text


def test_a_broker_that_never_answers_is_a_message_too_not_a_hung_request(
    client, draft, silent_broker, fake_provider
):
    started = time.monotonic()
    response = client.post(reverse("vouchers:bulksale-start", args=[draft.pk]), follow=True)
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed < 5.0, f"{elapsed:.2f} s"  # two attempts of at most one socket timeout each
    assert "could not be queued" in _messages(response)
    bulk = BulkSale.objects.get(pk=draft.pk)
    assert bulk.state == BulkSaleState.QUEUED and bulk_sale_is_stalled(bulk)
    assert fake_provider.calls["purchase"] == 0
