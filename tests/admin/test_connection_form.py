"""Test connection on the values in the change form (issue 19, item 1).

The buttons submit the form to the test URL: the typed values are tested, never saved, the page
comes back with the typed values, and a failure is shown only in error style, naming the step
that failed and what to check.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
import requests
import responses
from django.contrib.messages import constants
from django.core.cache import cache
from django.urls import reverse
from django.utils import translation
from urllib3.exceptions import NewConnectionError

from vouchers.models import AuditEvent, Campaign, ProviderOperation
from vouchers.providers.lina import RECIPES, session_key

from .test_credentials import campaign_form_data

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _language_restored():
    """A German request leaves German active in this thread (LocaleMiddleware never resets it);
    restore the language after each test so later tests read English."""
    with translation.override(translation.get_language()):
        yield


LINA = "https://lina.example.test/extern/tokenapi"  # tests/support/factories.py
ALLSAFE = "https://allsafe.example.test"
IP = "203.0.113.9"
PASSWORD = "api-password-secret"
REFUSED = requests.exceptions.ConnectionError(NewConnectionError(None, "Connection refused"))
SHARED_KEY = "shared-key-secret"


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def lina_accepting(mocked, base: str, password: str, shared_key: str = SHARED_KEY) -> None:
    """LINA at ``base`` accepting the default recipe for exactly ``password``/``shared_key``."""
    expected = RECIPES["md5(md5(password)+ip+key)"](password, IP, shared_key)

    def login(request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        if form.get("pass") == expected:
            return 200, {}, json.dumps({"status": "OK", "hash": "5e55109a" * 4})
        return 400, {}, '{"status": "error", "response": "Login fehlgeschlagen"}'

    mocked.post(f"{base}/ping", json={"status": "OK", "myip": IP})
    mocked.add_callback("POST", f"{base}/login", callback=login)


def logins(mocked) -> int:
    return sum(1 for call in mocked.calls if call.request.url.endswith("/login"))


def press_test(client, campaign: Campaign, *, detect: bool = False, language: str = "en", **typed):
    data = campaign_form_data(campaign, **typed)
    data["detect_recipe" if detect else "test_connection"] = "1"
    return client.post(
        reverse("admin:vouchers_campaign_test_connection", args=[campaign.pk]),
        data,
        HTTP_ACCEPT_LANGUAGE=language,
    )


def shown(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in response.context["messages"]]


def assert_no_green(messages: list[tuple[int, str]]) -> None:
    """The admin draws success and info alike in green: a failure may use neither."""
    assert messages
    assert all(level in (constants.ERROR, constants.WARNING) for level, _text in messages), messages


def test_typed_wrong_password_is_tested_not_saved_and_shown_as_errors(
    client, mocked, campaign_admin, lina_campaign
):
    lina_accepting(mocked, LINA, PASSWORD)
    client.force_login(campaign_admin)
    response = press_test(client, lina_campaign, name="Typed name", new_password="wrong-typed-password")

    assert response.status_code == 200  # the change form again, bound to what was typed
    form = response.context["adminform"].form
    assert form["name"].value() == "Typed name"
    body = response.content.decode()
    assert "wrong-typed-password" not in body  # write-only stays write-only
    assert 'name="test_connection"' in body  # the buttons are there to test again
    messages = shown(response)
    assert_no_green(messages)
    text = " ".join(t for _level, t in messages)
    assert "LINA refused the login" in text and "The connection works" not in text
    assert "Failed step: LINA login" in text and "What to check" in text
    assert logins(mocked) == 1  # at most one failed login
    lina_campaign.refresh_from_db()
    assert lina_campaign.name != "Typed name" and lina_campaign.api_password == PASSWORD
    operation = ProviderOperation.objects.get(kind="test")
    assert operation.state == "failed" and operation.request_data["values"] == "form"
    assert AuditEvent.objects.get(action="campaign.connection_tested").data["values"] == "form"
    assert not AuditEvent.objects.filter(
        action__in=["campaign.changed", "campaign.credentials_changed"]
    ).exists()


def test_typed_right_password_works_and_says_it_is_not_saved(client, mocked, campaign_admin, lina_campaign):
    lina_campaign.api_password = "old-wrong-password"
    lina_campaign.save()
    lina_accepting(mocked, LINA, "the-right-password")
    client.force_login(campaign_admin)
    response = press_test(client, lina_campaign, new_password="the-right-password")

    [(level, text)] = shown(response)
    assert level == constants.SUCCESS
    assert "The connection works" in text and "not saved until you press Save" in text
    lina_campaign.refresh_from_db()
    assert lina_campaign.api_password == "old-wrong-password"
    # Typed values never become the session the tills use.
    assert cache.get(session_key(lina_campaign.pk)) is None
    # The re-rendered form still saves to the change page, not to the test URL.
    assert f'action="{reverse("admin:vouchers_campaign_change", args=[lina_campaign.pk])}"' in (
        response.content.decode()
    )


def test_blank_secrets_use_the_stored_ones_on_the_saved_address(
    client, mocked, campaign_admin, lina_campaign
):
    lina_accepting(mocked, LINA, PASSWORD)
    client.force_login(campaign_admin)
    response = press_test(client, lina_campaign, base_url=f"{LINA}/")  # same host, other path
    assert [level for level, _text in shown(response)] == [constants.SUCCESS]


def test_unreachable_host_says_check_the_base_url(client, mocked, campaign_admin, allsafe_campaign):
    mocked.get(f"{ALLSAFE}/availability", body=REFUSED)
    client.force_login(campaign_admin)
    response = press_test(client, allsafe_campaign)
    messages = shown(response)
    assert_no_green(messages)
    text = " ".join(t for _level, t in messages)
    assert "https://allsafe.example.test could not be reached" in text
    assert "try again in a moment" not in text
    assert "Failed step: Allsafe availability" in text
    assert f"The base URL {ALLSAFE}: scheme, host name, port and path." in text


def test_unreachable_host_in_german(client, mocked, campaign_admin, allsafe_campaign):
    mocked.get(f"{ALLSAFE}/availability", body=REFUSED)
    client.force_login(campaign_admin)
    response = press_test(client, allsafe_campaign, language="de")
    messages = shown(response)
    assert_no_green(messages)
    text = " ".join(t for _level, t in messages)
    assert "nicht erreichbar" in text and "Basis-URL" in text and "Fehlgeschlagener Schritt" in text


def test_a_form_with_errors_tests_nothing(client, mocked, campaign_admin, lina_campaign):
    client.force_login(campaign_admin)
    response = press_test(client, lina_campaign, base_url="not a url", connect_timeout="")
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    messages = shown(response)
    assert_no_green(messages)
    assert "nothing was tested" in messages[0][1]
    assert len(mocked.calls) == 0
    assert not ProviderOperation.objects.exists()


def test_detect_recipe_runs_on_the_typed_values(client, mocked, campaign_admin, lina_campaign):
    lina_accepting(mocked, LINA, "typed-password")
    client.force_login(campaign_admin)
    response = press_test(client, lina_campaign, detect=True, new_password="typed-password")
    assert [level for level, _text in shown(response)] == [constants.SUCCESS]
    assert logins(mocked) == 1


def test_view_only_staff_tests_the_saved_values(client, mocked, lina_campaign):
    from django.contrib.auth.models import Permission

    from ..support.factories import make_user

    staff = make_user(None, lina_campaign)
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_campaign", "test_connection"]))
    lina_accepting(mocked, LINA, PASSWORD)
    client.force_login(staff)
    page = client.get(reverse("admin:vouchers_campaign_change", args=[lina_campaign.pk])).content.decode()
    assert "Test connection" in page
    response = press_test(client, lina_campaign, new_password="ignored-without-change-permission")
    assert response.status_code == 302  # the saved values were tested
    assert ProviderOperation.objects.get(kind="test").request_data["values"] == "saved"


def test_a_read_timeout_names_the_read_timeout(client, mocked, campaign_admin, lina_campaign):
    mocked.post(f"{LINA}/ping", body=requests.exceptions.ReadTimeout("slow"))
    client.force_login(campaign_admin)
    response = press_test(client, lina_campaign)
    messages = shown(response)
    assert_no_green(messages)
    text = " ".join(t for _level, t in messages)
    assert "did not answer within the read timeout" in text and "Failed step: Reaching LINA (ping)" in text
    assert "It is not known whether" not in text  # a test only reads: nothing can have changed
