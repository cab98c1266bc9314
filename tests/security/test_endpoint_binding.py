"""Stored credentials stay bound to the endpoint they were entered for (issue 15, item 1).

A campaign admin (not a superuser) points a campaign's base URL at a capture server — a tiny HTTP
server on a free loopback port that records every request — keeps the stored secrets (blank
fields), then presses *Test connection*, runs a stock poll and (LINA) a desk check. The capture
server must never see the stored credentials:

* loopback allowed (the development default): the save goes through but clears the secrets, so
  the clients refuse to call without them — proves the clearing;
* loopback not allowed: the form refuses the address, and a row already pointing there (changed
  behind the form's back) is refused before anything is sent — proves the host binding.

A positive control enters new secrets in the same save and sees them arrive, so the capture
server demonstrably would have caught the old ones.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from vouchers.models import AuditEvent, Campaign, ProviderOperation
from vouchers.providers.lina import RECIPES
from vouchers.services.refusals import Refusal
from vouchers.services.tokens import token_check
from vouchers.tasks.stock import stock_poll_task

from ..admin.test_credentials import campaign_form_data
from ..conftest import TEST_PROVIDER_HOSTS

pytestmark = pytest.mark.django_db

PASSWORD = "api-password-secret"  # tests/support/factories.py
SHARED_KEY = "shared-key-secret"
USERNAME = "api-user"
CAPTURE_IP = "203.0.113.5"  # what the capture server claims the portal's address is (LINA ping)
CODE = "ABCD2345EFGH6789"


class CaptureServer:
    """Records method, path, headers and body of every request; answers like a friendly provider.

    ``redirect_to`` makes every answer but LINA's ping a 307 there (a redirect that would resend
    a POST body, such as the LINA login).
    """

    def __init__(self, redirect_to: str = ""):
        self.requests: list[dict] = []
        self.redirect_to = redirect_to
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                capture.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                if capture.redirect_to and not self.path.endswith("/ping"):
                    self.send_response(307)
                    self.send_header("Location", capture.redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path.endswith("/ping"):
                    answer = {"status": "OK", "myip": CAPTURE_IP}
                elif self.path.endswith("/login"):
                    answer = {"status": "OK", "hash": "captured-session"}
                elif self.path.endswith("/availability"):
                    answer = [{"vendor": "Takealot", "value": 100, "remaining": 5}]
                else:
                    answer = {"status": "OK"}
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def raw(self) -> bytes:
        """Everything that arrived, as bytes, to search for secrets."""
        parts = []
        for request in self.requests:
            parts.append(request["path"].encode())
            parts.extend(f"{k}: {v}".encode() for k, v in request["headers"].items())
            parts.append(request["body"])
        return b"\n".join(parts)

    def saw(self, password: str, shared_key: str = "") -> bool:
        """Whether any request carried the credentials (plain, as Basic auth, or as a login hash)."""
        raw = self.raw()
        needles = [password.encode(), hashlib.md5(password.encode()).hexdigest().encode()]  # noqa: S324
        needles.append(base64.b64encode(f"{USERNAME}:{password}".encode()))
        if shared_key:
            needles.append(shared_key.encode())
            needles.extend(recipe(password, CAPTURE_IP, shared_key).encode() for recipe in RECIPES.values())
        return any(needle in raw for needle in needles)

    def logins(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/login") or b"pass=" in r["body"]]

    def authorised(self) -> list[dict]:
        return [r for r in self.requests if any(k.lower() == "authorization" for k in r["headers"])]


@pytest.fixture
def capture():
    with CaptureServer() as server:
        yield server


@pytest.fixture
def loopback_refused(settings):
    """Production-like allow-list: the documented hosts (and the tests' made-up ones), no loopback."""
    settings.PROVIDER_ALLOWED_HOSTS = {
        "lina": ["api.lina.de", "login.amadeus360.de", *TEST_PROVIDER_HOSTS["lina"]],
        "allsafe": ["allsafe-api.poweredbytechsys.co.za", *TEST_PROVIDER_HOSTS["allsafe"]],
    }


def _change(client, campaign: Campaign, **overrides):
    return client.post(
        reverse("admin:vouchers_campaign_change", args=[campaign.pk]),
        campaign_form_data(campaign, **overrides),
    )


def _test_connection(client, campaign: Campaign) -> str:
    response = client.post(
        reverse("admin:vouchers_campaign_test_connection", args=[campaign.pk]), follow=True
    )
    assert response.status_code == 200
    return " ".join(str(m) for m in response.context["messages"])


def _exercise(client, campaign: Campaign, user) -> dict:
    """Test connection, a stock poll (Allsafe) or a desk check (LINA); what each said."""
    said = {"test": _test_connection(client, campaign)}
    campaign.refresh_from_db()
    if campaign.is_allsafe:
        said["poll"] = stock_poll_task.apply(args=[campaign.pk]).get()
        said["poll_error"] = ProviderOperation.objects.filter(campaign=campaign, kind="poll").latest("pk")
    else:
        with pytest.raises(Refusal) as refused:
            token_check(campaign=campaign, user=user, code=CODE)
        said["check"] = refused.value
    return said


def _base(capture: CaptureServer, campaign: Campaign) -> str:
    return capture.url + ("/extern/tokenapi" if campaign.is_lina else "")


@pytest.mark.parametrize("which", ["allsafe", "lina"])
def test_moving_the_base_url_clears_the_stored_secrets(
    client, campaign_admin, lina_campaign, allsafe_campaign, capture, which
):
    campaign = allsafe_campaign if which == "allsafe" else lina_campaign
    assert not campaign_admin.is_superuser
    client.force_login(campaign_admin)
    old_host = "https://allsafe.example.test" if which == "allsafe" else "https://lina.example.test"

    response = _change(client, campaign, base_url=_base(capture, campaign))
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign.refresh_from_db()
    assert campaign.base_url == _base(capture, campaign)
    assert not campaign.has_password and not campaign.has_shared_key
    event = AuditEvent.objects.get(action="campaign.endpoint_changed", campaign=campaign)
    assert event.data["old_host"] == old_host and event.data["new_host"] == capture.url
    assert sorted(event.data["cleared"]) == ["password", "shared key"]
    assert PASSWORD not in json.dumps(event.data) + event.summary
    warning = " ".join(str(m) for m in client.get(reverse("admin:index")).context["messages"])
    assert "stored credentials were cleared" in warning

    said = _exercise(client, campaign, campaign_admin)

    assert not capture.saw(PASSWORD, SHARED_KEY)
    assert capture.authorised() == [] and capture.logins() == []
    if which == "allsafe":
        assert capture.requests == []  # no credentials, no call at all
        assert "no Allsafe user name or password" in said["test"]
        assert said["poll"] == "failed" and said["poll_error"].error_code == "Misconfigured"
    else:
        assert {r["path"] for r in capture.requests} <= {"/extern/tokenapi/ping"}  # ping carries nothing
        assert said["check"].code == "Misconfigured"


@pytest.mark.parametrize("which", ["allsafe", "lina"])
def test_new_secrets_entered_with_the_move_are_kept_and_used(
    client, campaign_admin, lina_campaign, allsafe_campaign, capture, which
):
    """The positive control: what the capture server would have caught, it does catch."""
    campaign = allsafe_campaign if which == "allsafe" else lina_campaign
    client.force_login(campaign_admin)
    response = _change(
        client,
        campaign,
        base_url=_base(capture, campaign),
        new_password="fresh-pass",
        new_shared_key="fresh-key",
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.api_password == "fresh-pass"
    assert AuditEvent.objects.get(action="campaign.endpoint_changed").data["cleared"] == []
    _test_connection(client, campaign)
    assert capture.saw("fresh-pass", "fresh-key" if which == "lina" else "")
    assert not capture.saw(PASSWORD, SHARED_KEY)


def test_a_path_change_on_the_same_host_keeps_the_secrets(client, campaign_admin, lina_campaign):
    client.force_login(campaign_admin)
    response = _change(client, lina_campaign, base_url="https://lina.example.test/v2/tokenapi")
    assert response.status_code == 302
    lina_campaign.refresh_from_db()
    assert lina_campaign.api_password == PASSWORD and lina_campaign.api_shared_key == SHARED_KEY
    assert not AuditEvent.objects.filter(action="campaign.endpoint_changed").exists()


@pytest.mark.parametrize("which", ["allsafe", "lina"])
def test_an_address_off_the_allow_list_cannot_be_saved_tested_or_polled(
    client, campaign_admin, lina_campaign, allsafe_campaign, capture, loopback_refused, which
):
    campaign = allsafe_campaign if which == "allsafe" else lina_campaign
    setting = f"{which.upper()}_ALLOWED_HOSTS"
    client.force_login(campaign_admin)
    before = Campaign.objects.filter(pk=campaign.pk).values().get()
    events = AuditEvent.objects.count()

    response = _change(client, campaign, base_url=_base(capture, campaign))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["base_url"]
    assert setting in errors[0] and capture.url in errors[0]
    assert Campaign.objects.filter(pk=campaign.pk).values().get() == before  # nothing written
    assert AuditEvent.objects.count() == events

    # A row that points there already (edited before the allow-list existed, or in the database).
    Campaign.objects.filter(pk=campaign.pk).update(base_url=_base(capture, campaign))
    said = _exercise(client, campaign, campaign_admin)

    assert capture.requests == []
    assert setting in said["test"]
    if which == "allsafe":
        assert said["poll"] == "failed"
        assert (
            said["poll_error"].error_code == "Misconfigured" and setting in said["poll_error"].error_message
        )
    else:
        assert said["check"].code == "Misconfigured" and setting in " ".join(said["check"].what_to_check)
    campaign.refresh_from_db()
    assert campaign.api_password == PASSWORD  # refused, not cleared: the row is simply unusable


@pytest.mark.parametrize(
    "url",
    [
        "https://api.lina.de.evil.example/extern/tokenapi",
        "https://evil.example/extern/tokenapi?https://api.lina.de",
        "https://api.lina.de@evil.example/extern/tokenapi",
        "https://api.lina.de:8443/extern/tokenapi",
        "http://api.lina.de/extern/tokenapi",
    ],
)
def test_look_alike_addresses_are_refused(client, campaign_admin, lina_campaign, loopback_refused, url):
    client.force_login(campaign_admin)
    response = _change(client, lina_campaign, base_url=url)
    assert response.status_code == 200
    assert "LINA_ALLOWED_HOSTS" in response.context["adminform"].form.errors["base_url"][0]


def test_documented_hosts_are_allowed_by_default(client, campaign_admin, lina_campaign, loopback_refused):
    client.force_login(campaign_admin)
    for url in ("https://api.lina.de/extern/tokenapi", "https://login.amadeus360.de/extern/tokenapi"):
        response = _change(client, lina_campaign, base_url=url, new_password="p", new_shared_key="k")
        assert response.status_code == 302, url
        lina_campaign.refresh_from_db()
        assert lina_campaign.base_url == url


@pytest.mark.parametrize("which", ["allsafe", "lina"])
def test_a_redirect_to_another_host_is_never_followed(
    client, campaign_admin, lina_campaign, allsafe_campaign, which
):
    """The provider's address answers 307 to a capture server: the credentials (Basic auth, or
    the LINA login body a 307 would resend) never reach it."""
    campaign = allsafe_campaign if which == "allsafe" else lina_campaign
    with CaptureServer() as elsewhere, CaptureServer(redirect_to=elsewhere.url) as provider:
        client.force_login(campaign_admin)
        response = _change(
            client,
            campaign,
            base_url=_base(provider, campaign),
            new_password="fresh-pass",
            new_shared_key="k",
        )
        assert response.status_code == 302
        said = _test_connection(client, campaign)
        assert provider.requests  # the call was made to the configured address...
        assert elsewhere.requests == []  # ...and the redirect was not followed
        assert "The connection works" not in said
        assert not elsewhere.saw("fresh-pass", "k")


def test_the_test_connection_action_is_bounded(client, campaign_admin, lina_campaign):
    """Found reviewing user-sized loops: each test may wait for a provider's timeouts, so one
    action may not test an unbounded selection."""
    from vouchers.admin import MAX_CONNECTION_TESTS
    from vouchers.models import Membership

    from ..support.factories import CampaignFactory

    for n in range(MAX_CONNECTION_TESTS):
        Membership.objects.create(user=campaign_admin, campaign=CampaignFactory(slug=f"more-{n}"))
    client.force_login(campaign_admin)
    selected = list(Campaign.objects.values_list("pk", flat=True))
    assert len(selected) > MAX_CONNECTION_TESTS
    response = client.post(
        reverse("admin:vouchers_campaign_changelist"),
        {"action": "test_connection_action", "_selected_action": selected},
        follow=True,
    )
    assert response.status_code == 200
    assert f"at most {MAX_CONNECTION_TESTS} campaigns" in _messages_of(response)
    assert not ProviderOperation.objects.filter(kind="test").exists()


def _messages_of(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


# --- Test connection on the values typed in the form (issue 19, item 1) --------------------------


def _test_typed(client, campaign: Campaign, **typed) -> str:
    """Press "Test connection" on the change form holding ``typed`` (nothing is saved)."""
    data = campaign_form_data(campaign, **typed)
    data["test_connection"] = "1"
    response = client.post(reverse("admin:vouchers_campaign_test_connection", args=[campaign.pk]), data)
    assert response.status_code == 200
    return _messages_of(response)


@pytest.mark.parametrize("which", ["allsafe", "lina"])
def test_a_typed_address_elsewhere_never_gets_the_stored_secrets(
    client, campaign_admin, lina_campaign, allsafe_campaign, capture, which
):
    """A blank secret means "the stored one" only on the saved address: typed elsewhere, the
    test asks for the secrets again and calls nothing at all."""
    campaign = allsafe_campaign if which == "allsafe" else lina_campaign
    client.force_login(campaign_admin)
    before = Campaign.objects.filter(pk=campaign.pk).values().get()

    said = _test_typed(client, campaign, base_url=_base(capture, campaign))

    assert capture.requests == []
    assert "Stored secrets are only sent to the address they were entered for" in said
    assert "API password" in said and ("shared key" in said) == (which == "lina")
    assert "The connection works" not in said
    assert Campaign.objects.filter(pk=campaign.pk).values().get() == before  # nothing saved
    assert ProviderOperation.objects.get(kind="test").state == "failed"


@pytest.mark.parametrize("which", ["allsafe", "lina"])
def test_typed_secrets_for_a_typed_address_are_used_and_not_saved(
    client, campaign_admin, lina_campaign, allsafe_campaign, capture, which
):
    """The positive control: typed with the secrets, the test reaches the typed address with
    the typed secrets (never the stored ones) and saves neither."""
    campaign = allsafe_campaign if which == "allsafe" else lina_campaign
    client.force_login(campaign_admin)
    before = Campaign.objects.filter(pk=campaign.pk).values().get()

    said = _test_typed(
        client,
        campaign,
        base_url=_base(capture, campaign),
        new_password="typed-pass",
        new_shared_key="typed-key",
    )

    assert "The connection works" in said, said
    assert capture.saw("typed-pass", "typed-key" if which == "lina" else "")
    assert not capture.saw(PASSWORD, SHARED_KEY)
    assert Campaign.objects.filter(pk=campaign.pk).values().get() == before


def test_a_typed_address_off_the_allow_list_is_refused_before_any_call(
    client, campaign_admin, lina_campaign, capture, loopback_refused
):
    client.force_login(campaign_admin)
    said = _test_typed(client, lina_campaign, base_url=_base(capture, lina_campaign), new_password="p")
    assert capture.requests == []
    assert "nothing was tested" in said
