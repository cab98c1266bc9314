"""The test-connection service and its admin action and button."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.urls import reverse

from vouchers.models import AuditEvent, ProviderOperation
from vouchers.providers.lina import RECIPES, session_key
from vouchers.security.fields import Ciphertext
from vouchers.services.connection import ConnectionStep, campaign_test_connection

from ..support.factories import CampaignFactory, make_user

pytestmark = pytest.mark.django_db

LINA = "https://lina.example.test/extern/tokenapi"  # tests/support/factories.py
ALLSAFE = "https://allsafe.example.test"
IP = "203.0.113.9"
SESSION = "5e55109a5e55109a5e55109a5e55109a"


@pytest.fixture
def lina_server(mocked, sensitive):
    """LINA accepting exactly one recipe (``server.recipe``) for the factory credentials."""

    class Server:
        recipe = "md5(md5(password)+ip+key)"

    def login(request):
        from urllib.parse import parse_qs

        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        recipe = RECIPES.get(Server.recipe)  # None: LINA accepts no recipe at all
        expected = recipe("api-password-secret", IP, "shared-key-secret") if recipe else None
        if form.get("user") == "api-user" and expected and form.get("pass") == expected:
            return 200, {}, json.dumps({"status": "OK", "hash": SESSION})
        return 400, {}, '{"status": "error", "response": "Login fehlgeschlagen"}'

    sensitive.append(SESSION)
    sensitive.extend(RECIPES[r]("api-password-secret", IP, "shared-key-secret") for r in RECIPES)
    mocked.post(f"{LINA}/ping", json={"status": "OK", "myip": IP})
    mocked.add_callback("POST", f"{LINA}/login", callback=login)
    return Server


def staff_with(campaign, codename: str):
    """A staff member of ``campaign`` with one campaign permission and no role."""
    staff = make_user(None, campaign)
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename=codename))
    return staff


def logins(mocked) -> int:
    return sum(1 for call in mocked.calls if call.request.url.endswith("/login"))


# --- Service ------------------------------------------------------------------------------------


def test_lina_ping_and_login_work(lina_server, lina_campaign, campaign_admin):
    report = campaign_test_connection(campaign=lina_campaign, actor=campaign_admin)
    assert report.ok and report.working_recipe == "" and report.what_to_check == ()
    assert [(s.name, s.ok) for s in report.steps] == [("ping", True), ("login", True)]
    assert IP in report.steps[0].detail
    operation = ProviderOperation.objects.get(kind="test")
    assert operation.state == "succeeded" and operation.user == campaign_admin
    assert operation.response_data["ok"] is True
    event = AuditEvent.objects.get(action="campaign.connection_tested")
    assert event.campaign == lina_campaign and event.data["ok"] is True


def test_lina_refused_login_costs_one_failed_login_and_offers_detection(
    lina_server, lina_campaign, campaign_admin, mocked
):
    """A wrong password and a wrong recipe look the same; each refused login counts towards DENIED."""
    lina_server.recipe = "none"
    report = campaign_test_connection(campaign=lina_campaign, actor=campaign_admin)
    assert not report.ok and report.working_recipe == ""
    assert logins(mocked) == 1 and report.calls == 2  # ping + the configured login
    assert "(2 calls to the provider.)" in report.message
    assert any("Detect login recipe" in item for item in report.what_to_check)
    assert ProviderOperation.objects.get(kind="test").response_data["calls"] == 2


def test_lina_detect_reports_the_recipe_that_works(lina_server, lina_campaign, campaign_admin, mocked):
    lina_server.recipe = "md5(ip+md5(password)+key)"
    report = campaign_test_connection(campaign=lina_campaign, actor=campaign_admin, detect_recipe=True)
    assert not report.ok and report.calls == 4
    assert report.working_recipe == "md5(ip+md5(password)+key)"
    assert "md5(ip+md5(password)+key)" in report.message
    assert report.error_code == "AuthFailed"
    assert logins(mocked) == 3  # configured, then each other recipe until one works
    operation = ProviderOperation.objects.get(kind="test")
    assert operation.state == "failed" and operation.response_data["working_recipe"] == lina_server.recipe
    assert (
        AuditEvent.objects.get(action="campaign.connection_tested").data["working_recipe"]
        == lina_server.recipe
    )


def test_lina_no_recipe_works(lina_server, lina_campaign, campaign_admin, mocked):
    lina_server.recipe = "none"
    report = campaign_test_connection(campaign=lina_campaign, actor=campaign_admin, detect_recipe=True)
    assert not report.ok and report.working_recipe == ""
    assert report.message == "LINA refused the login. (4 calls to the provider.)"
    assert report.what_to_check
    assert logins(mocked) == 3


def test_lina_maintenance_is_reported(mocked, lina_campaign, campaign_admin):
    mocked.post(f"{LINA}/ping", json={"status": "Maintanance"})
    report = campaign_test_connection(campaign=lina_campaign, actor=campaign_admin)
    assert not report.ok
    assert report.message.startswith("LINA is in maintenance. Nothing was changed; try again later.")
    assert report.error_code == "ProviderMaintenance"


def test_allsafe_availability_works(mocked, allsafe_campaign, campaign_admin):
    mocked.get(f"{ALLSAFE}/availability", json=[{"vendor": "A", "value": 10, "remaining": 4}])
    report = campaign_test_connection(campaign=allsafe_campaign, actor=campaign_admin)
    assert report.ok and "4 vouchers" in report.steps[0].detail


def test_allsafe_401_explains_what_to_check(mocked, allsafe_campaign, campaign_admin):
    mocked.get(f"{ALLSAFE}/availability", status=401, json={"detail": "no"})
    report = campaign_test_connection(campaign=allsafe_campaign, actor=campaign_admin)
    assert not report.ok and len(report.what_to_check) == 3
    assert ProviderOperation.objects.get(kind="test").error_code == "AuthFailed"


def test_undecryptable_credentials_are_reported_without_a_call(mocked, lina_campaign, campaign_admin):
    lina_campaign.api_password = Ciphertext("gAAAAAB-not-a-valid-token")  # as if stored under a lost key
    lina_campaign.save()
    report = campaign_test_connection(campaign=lina_campaign, actor=campaign_admin)
    assert not report.ok and "cannot be decrypted" in report.message
    assert any("FIELD_ENCRYPTION_KEYS" in item for item in report.what_to_check)
    assert len(mocked.calls) == 0
    assert ProviderOperation.objects.get(kind="test").state == "failed"


# --- Against the live sandbox (real HTTP) -------------------------------------------------------------


@pytest.fixture
def sandbox_lina_campaign(sandbox, sensitive):
    """A LINA campaign with the sandbox's demo credentials (sandbox/seed.py)."""
    sensitive.extend(["demo-lina-password", "demo-lina-shared-key"])
    campaign = CampaignFactory(
        name="Sandbox LINA",
        slug="sandbox-lina",
        provider="lina",
        base_url=sandbox.lina_url,
        api_username="demo-shop",
        credentials__password="demo-lina-password",
        credentials__shared_key="demo-lina-shared-key",
    )
    yield campaign
    cached = cache.get(session_key(campaign.pk))
    if isinstance(cached, dict):
        sensitive.append(cached["hash"])


def test_sandbox_lina_demo_credentials_work(sandbox, sandbox_lina_campaign, campaign_admin):
    report = campaign_test_connection(campaign=sandbox_lina_campaign, actor=campaign_admin)
    assert report.ok, report.message
    assert [(s.name, s.ok) for s in report.steps] == [("ping", True), ("login", True)]
    assert "127.0.0.1" in report.steps[0].detail  # the address the sandbox sees
    assert sandbox.request_count("lina", "login") == 1
    assert ProviderOperation.objects.get(kind="test").state == "succeeded"


@pytest.mark.parametrize("working", [r for r in RECIPES if r != "md5(md5(password)+ip+key)"])
def test_sandbox_lina_names_the_working_recipe(sandbox, sandbox_lina_campaign, campaign_admin, working):
    """The campaign keeps the default recipe; the sandbox account is switched to another."""
    sandbox.set_lina_account("demo-shop", recipe=working)
    report = campaign_test_connection(campaign=sandbox_lina_campaign, actor=campaign_admin)
    assert not report.ok and report.working_recipe == ""  # a plain test never guesses
    assert sandbox.request_count("lina", "login") == 1
    sandbox.clear_requests()
    report = campaign_test_connection(
        campaign=sandbox_lina_campaign, actor=campaign_admin, detect_recipe=True
    )
    assert not report.ok and report.working_recipe == working
    assert working in report.message and report.error_code == "AuthFailed"
    assert report.steps[-1] == ConnectionStep("login", True, f"Login with recipe {working} accepted.")
    # Each refused recipe is one failed login at LINA (they count towards DENIED): no more than needed.
    tried = list(RECIPES).index(working) + 1
    assert sandbox.request_count("lina", "login") == tried
    assert (
        ProviderOperation.objects.filter(kind="test").latest("pk").response_data["working_recipe"] == working
    )
    sandbox_lina_campaign.lina_hash_recipe = working
    sandbox_lina_campaign.save()
    assert campaign_test_connection(campaign=sandbox_lina_campaign, actor=campaign_admin).ok


def test_sandbox_allsafe_demo_credentials_work(sandbox, sensitive, campaign_admin):
    sensitive.append("demo-allsafe-password")
    campaign = CampaignFactory(
        name="Sandbox Allsafe",
        slug="sandbox-allsafe",
        provider="allsafe",
        base_url=sandbox.allsafe_url,
        api_username="demo-allsafe",
        credentials__password="demo-allsafe-password",
    )
    report = campaign_test_connection(campaign=campaign, actor=campaign_admin)
    assert report.ok, report.message
    total = sum(row["count"] for row in sandbox.stock("demo-allsafe"))
    assert f"{total} vouchers in stock" in report.steps[0].detail
    sandbox.set_allsafe_campaign("demo-allsafe", integration_active=False)
    report = campaign_test_connection(campaign=campaign, actor=campaign_admin)
    assert not report.ok and report.error_code == "AuthFailed" and len(report.what_to_check) == 3


# --- Admin ----------------------------------------------------------------------------------------


def test_change_page_shows_the_button_to_campaign_admins(client, campaign_admin, lina_campaign):
    client.force_login(campaign_admin)
    body = client.get(reverse("admin:vouchers_campaign_change", args=[lina_campaign.pk])).content.decode()
    assert reverse("admin:vouchers_campaign_test_connection", args=[lina_campaign.pk]) in body
    assert "Test connection" in body and "Detect login recipe" in body


def test_sandbox_wrong_password_costs_exactly_one_failed_login(
    sandbox, sandbox_lina_campaign, campaign_admin
):
    sandbox_lina_campaign.api_password = "not-the-password"
    sandbox_lina_campaign.save()
    report = campaign_test_connection(campaign=sandbox_lina_campaign, actor=campaign_admin)
    assert not report.ok and report.error_code == "AuthFailed" and report.calls == 2
    assert sandbox.request_count("lina", "login") == 1
    [count] = sandbox.state()["lina_failure_counts"].values()
    assert count["recent_failures"] == 1


def test_button_runs_the_test_and_shows_the_report(client, lina_server, campaign_admin, lina_campaign):
    lina_server.recipe = "md5(password+ip+key)"
    client.force_login(campaign_admin)
    url = reverse("admin:vouchers_campaign_test_connection", args=[lina_campaign.pk])
    response = client.post(url)
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert not any(text.startswith("Working LINA login recipe") for text in texts)
    response = client.post(url, {"detect_recipe": "1"})
    assert response.status_code == 302
    assert response.url == reverse("admin:vouchers_campaign_change", args=[lina_campaign.pk])
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("md5(password+ip+key)" in text and "LINA refused the login" in text for text in texts)
    assert any(text.startswith("Working LINA login recipe") for text in texts)
    assert any(text.startswith("What to check") for text in texts)
    assert ProviderOperation.objects.filter(kind="test", campaign=lina_campaign).count() == 2


def test_button_needs_post(client, campaign_admin, lina_campaign):
    client.force_login(campaign_admin)
    response = client.get(reverse("admin:vouchers_campaign_test_connection", args=[lina_campaign.pk]))
    assert response.status_code == 405
    assert not ProviderOperation.objects.exists()


def test_button_is_refused_without_the_permission(client, lina_campaign):
    staff = staff_with(lina_campaign, "change_campaign")
    client.force_login(staff)
    page = client.get(reverse("admin:vouchers_campaign_change", args=[lina_campaign.pk]))
    assert page.status_code == 200 and "test-connection" not in page.content.decode()
    response = client.post(reverse("admin:vouchers_campaign_test_connection", args=[lina_campaign.pk]))
    assert response.status_code == 403
    assert not ProviderOperation.objects.exists()


def test_cashier_gets_403(client, cashier, lina_campaign):
    client.force_login(cashier)
    response = client.post(reverse("admin:vouchers_campaign_test_connection", args=[lina_campaign.pk]))
    assert response.status_code == 403


def test_campaign_outside_the_admins_scope_is_404(client, campaign_admin, other_campaign):
    client.force_login(campaign_admin)
    response = client.post(reverse("admin:vouchers_campaign_test_connection", args=[other_campaign.pk]))
    assert response.status_code == 404
    assert not ProviderOperation.objects.exists()


def test_admin_action_tests_each_selected_campaign(
    client, mocked, lina_server, campaign_admin, lina_campaign, allsafe_campaign
):
    mocked.get(f"{ALLSAFE}/availability", status=204)
    client.force_login(campaign_admin)
    response = client.post(
        reverse("admin:vouchers_campaign_changelist"),
        {"action": "test_connection_action", "_selected_action": [lina_campaign.pk, allsafe_campaign.pk]},
    )
    assert response.status_code == 302
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert sum("The connection works." in text for text in texts) == 2
    assert ProviderOperation.objects.filter(kind="test").count() == 2


def test_admin_action_is_offered_only_with_the_permission(client, lina_campaign, campaign_admin):
    client.force_login(campaign_admin)
    assert (
        "test_connection_action" in client.get(reverse("admin:vouchers_campaign_changelist")).content.decode()
    )
    staff = staff_with(lina_campaign, "view_campaign")
    client.force_login(staff)
    assert (
        "test_connection_action"
        not in client.get(reverse("admin:vouchers_campaign_changelist")).content.decode()
    )


def test_change_page_shows_the_session_rejection_phrases_with_their_defaults(
    client, campaign_admin, lina_campaign
):
    client.force_login(campaign_admin)
    body = client.get(reverse("admin:vouchers_campaign_change", args=[lina_campaign.pk])).content.decode()
    assert 'name="lina_session_phrases"' in body
    assert "LINA session rejection phrases" in body and "sitzung" in body
