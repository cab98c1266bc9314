"""Stock polling on a REAL Celery worker and REAL Redis against a local Allsafe-like HTTP server.

The worker is a separate process, so the in-memory fake provider cannot reach it: a tiny HTTP
server in this process answers ``GET /availability`` as Allsafe does (WIRE.md), and the worker
calls it with the real Allsafe client, as production does. E-mail goes to the file backend in the
worker's tmp dir.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from vouchers.access import roles
from vouchers.models import ProviderOperation, StockAlert, StockMonitor, StockSnapshot
from vouchers.models.stock import AlertKind, AlertState
from vouchers.tasks.stock import stock_poll_dispatch_task, stock_poll_task

from ..support.factories import CampaignFactory, make_user

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

WORKER = {"env": {"STOCK_POLL_MAX_RETRIES": "0"}}


class AllsafeStub:
    """Answers like Allsafe's availability endpoint; switchable to a 503 HTML page ("down")."""

    def __init__(self, username: str, password: str):
        self.stock: list[dict] = []
        self.down = False
        self.delay = 0.0
        self.requests = 0
        self.expected_auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                stub.requests += 1
                time.sleep(stub.delay)
                if self.path != "/availability":
                    return self._send(404, b'{"detail": "Not Found"}')
                if self.headers.get("Authorization") != stub.expected_auth:
                    return self._send(401, b'{"detail": "Unauthorized"}')
                if stub.down:
                    return self._send(
                        503, b"<html><body><h1>503 Service Unavailable</h1></body></html>", "text/html"
                    )
                return self._send(200, json.dumps(stub.stock).encode())

            def _send(self, status, body, content_type="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def allsafe_stub():
    stub = AllsafeStub("vault-user", "vault-password")
    yield stub
    stub.close()


@pytest.fixture
def role_groups(transactional_db):
    """The role groups come from a data migration, which the flush between transactional tests
    removes; put them back (permissions themselves are recreated by the flush's post_migrate)."""
    from django.contrib.auth.models import Group, Permission

    for role, perms in roles.ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


@pytest.fixture
def vault(allsafe_stub, role_groups):
    campaign = CampaignFactory(
        provider="allsafe",
        name="Worker vault",
        base_url=allsafe_stub.url,
        api_username="vault-user",
        credentials__password="vault-password",
        low_stock_threshold=10,
        read_timeout=5,
    )
    make_user(roles.CAMPAIGN_ADMIN, campaign, username="vaultadmin", email="vaultadmin@example.com")
    return campaign


def wait_for(condition, worker, timeout=30.0, what="condition"):
    worker.wait_until(condition, timeout=timeout, what=what)


def mails(tmp_path) -> list[str]:
    """Messages the worker's file e-mail backend wrote (one block per message)."""
    folder = tmp_path / "mail"
    if not folder.exists():
        return []
    text = "".join(path.read_text() for path in sorted(folder.iterdir()))
    return re.findall(r"^Subject: .*$", text, flags=re.MULTILINE)


def finished_polls(worker) -> list[str]:
    """Statuses of finished polls: one-campaign tasks ('succeeded') and chunk tasks ({'succeeded': 1})."""
    output = worker.output()
    single = re.findall(r"stock_poll_task\[[^\]]+\] succeeded in [\d.]+s: '(\w+)'", output)
    chunks = re.findall(r"stock_poll_chunk_task\[[^\]]+\] succeeded in [\d.]+s: \{([^}]*)\}", output)
    for counts in chunks:
        for status, n in re.findall(r"'(\w+)': (\d+)", counts):
            single += [status] * int(n)
    return single


def test_poll_alert_email_and_recovery_on_a_real_worker(celery_worker_process, allsafe_stub, vault, tmp_path):
    allsafe_stub.stock = [
        {"vendor": "Takealot", "value": 100, "remaining": 4},
        {"vendor": "Uber", "value": 50, "remaining": 80},
    ]
    worker = celery_worker_process(**WORKER)

    stock_poll_task.delay(vault.pk)
    wait_for(
        lambda: StockAlert.objects.filter(emailed_at__isnull=False).exists(),
        worker,
        what="the e-mailed alert",
    )
    alert = StockAlert.objects.get()
    assert (alert.kind, alert.vendor, alert.remaining, alert.state) == (
        AlertKind.LOW_STOCK,
        "Takealot",
        4,
        AlertState.OPEN,
    )
    assert StockSnapshot.objects.get().levels.count() == 2
    assert ProviderOperation.objects.get().kind == "poll"
    [subject] = mails(tmp_path)
    assert "Worker vault" in subject

    stock_poll_task.delay(vault.pk)  # still low: no second alert, no second e-mail
    wait_for(lambda: StockSnapshot.objects.count() == 2, worker, what="the second snapshot")
    wait_for(lambda: len(finished_polls(worker)) == 2, worker, what="the second poll to finish")
    assert StockAlert.objects.count() == 1 and len(mails(tmp_path)) == 1

    allsafe_stub.stock[0]["remaining"] = 40  # restocked
    stock_poll_task.delay(vault.pk)
    wait_for(
        lambda: StockAlert.objects.filter(state=AlertState.RESOLVED).exists(), worker, what="the resolution"
    )
    assert StockAlert.objects.count() == 1 and len(mails(tmp_path)) == 1


def test_the_same_poll_dispatched_twice_at_once_alerts_once(
    celery_worker_process, allsafe_stub, vault, tmp_path
):
    allsafe_stub.stock = [{"vendor": "Takealot", "value": 100, "remaining": 0}]
    allsafe_stub.delay = 1.0  # both polls are in flight at the same time
    worker = celery_worker_process(concurrency=2, **WORKER)

    stock_poll_task.delay(vault.pk)
    stock_poll_task.delay(vault.pk)
    wait_for(lambda: len(finished_polls(worker)) == 2, worker, what="both polls to finish")

    assert sorted(finished_polls(worker)) in (["busy", "succeeded"], ["succeeded", "succeeded"])
    # Out of stock supersedes low stock: one alert for the item (issue 19).
    assert sorted(StockAlert.objects.values_list("kind", flat=True)) == [AlertKind.OUT_OF_STOCK]
    assert len(mails(tmp_path)) == 1  # one message, to the one admin


def test_provider_down_for_n_intervals_raises_a_stale_alert(
    celery_worker_process, allsafe_stub, vault, tmp_path
):
    vault.poll_interval_minutes = 1
    vault.stale_after_intervals = 2
    vault.save()
    allsafe_stub.stock = [{"vendor": "Uber", "value": 50, "remaining": 80}]
    worker = celery_worker_process(**WORKER)

    # The dispatcher (what the one beat entry runs) fans the poll out to the worker.
    stock_poll_dispatch_task.delay()
    wait_for(lambda: StockSnapshot.objects.exists(), worker, what="the first snapshot")

    allsafe_stub.down = True
    stock_poll_task.delay(vault.pk)
    wait_for(lambda: ProviderOperation.objects.filter(state="failed").exists(), worker, what="a failed poll")
    assert ProviderOperation.objects.get(state="failed").error_code == "ProviderUnavailable"
    assert not StockAlert.objects.exists()  # one failed poll is not stale data yet

    # Two intervals pass without a successful poll (time moved instead of waiting two minutes);
    # the dispatcher notices and fans out the next poll, which fails again.
    StockMonitor.objects.update(
        last_success_at=timezone.now() - timedelta(minutes=2, seconds=5), next_poll_at=timezone.now()
    )
    stock_poll_dispatch_task.delay()
    wait_for(
        lambda: ProviderOperation.objects.filter(state="failed").count() == 2, worker, what="the next poll"
    )
    wait_for(lambda: len(finished_polls(worker)) == 3, worker, what="the polls to finish")
    alert = StockAlert.objects.get()  # dispatcher and poll both saw it: still one alert
    assert alert.kind == AlertKind.STALE and alert.state == AlertState.OPEN
    assert "could not be reached" in alert.message
    wait_for(lambda: len(mails(tmp_path)) == 1, worker, what="the stale-data e-mail")

    allsafe_stub.down = False
    stock_poll_task.delay(vault.pk)
    wait_for(
        lambda: StockAlert.objects.filter(state=AlertState.RESOLVED).exists(), worker, what="the resolution"
    )
