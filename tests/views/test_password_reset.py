"""Password reset by e-mail and session rotation (issue 15, item 6).

Django's own views under the portal's templates: the answer is the same for known, unknown and
inactive addresses (the view does not look anyone up; a worker mails), requests are throttled per
address and per client address, links work once, the new password meets AUTH_PASSWORD_VALIDATORS,
every reset is an audit event (never the value), a reset does not sign in (django-axes still
guards sign-in), and sessions rotate on login and end when someone's rights change.
"""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from vouchers.access import roles
from vouchers.models import AuditEvent
from vouchers.tasks import accounts as account_tasks

from ..services.test_audit_trail import user_change_data
from ..services.test_cache_outage import CACHE_DOWN
from ..support.factories import PASSWORD, make_user, role_group

pytestmark = pytest.mark.django_db
User = get_user_model()
NEW_PASSWORD = "Brand-new-shift-2026"
LINK = re.compile(r"https?://[^/\s]+(/password-reset/[^/\s]+/[^/\s]+/)")


@pytest.fixture
def queued(monkeypatch):
    """The mail job runs as a worker would, right away; what was queued is recorded."""
    jobs = []

    def delay(*args):
        jobs.append(args)
        return account_tasks.password_reset_send_task.run(*args)

    monkeypatch.setattr(account_tasks.password_reset_send_task, "delay", delay)
    return jobs


@pytest.fixture
def person(lina_campaign):
    return make_user(roles.CASHIER, lina_campaign, username="till7", email="till7@shop.example")


def ask(client, email, **extra):
    return client.post(reverse("password_reset"), {"email": email}, **extra)


def reset_link(message) -> str:
    match = LINK.search(message.body)
    assert match, message.body
    return match.group(1)


def follow_link(client, path):
    """Django's confirm view moves the token into the session and redirects to the form."""
    response = client.get(path)
    assert response.status_code == 302
    return response["Location"]


# --- Asking for a link --------------------------------------------------------------------------


def test_login_page_links_to_the_reset(client):
    body = client.get(reverse("login")).content.decode()
    assert reverse("password_reset") in body and "Forgot your password?" in body


def test_known_unknown_and_inactive_addresses_get_the_same_answer(client, person, queued):
    inactive = make_user(None, username="gone", email="gone@shop.example", is_active=False)
    answers = []
    for email in ("till7@shop.example", "nobody@shop.example", inactive.email):
        response = ask(client, email)
        answers.append((response.status_code, response["Location"]))
    assert answers == [(302, reverse("password_reset_done"))] * 3
    # Only the active account got a mail, to its own address.
    assert [m.to for m in mail.outbox] == [["till7@shop.example"]]
    page = client.get(reverse("password_reset_done")).content.decode()
    assert "If the address belongs to an active account" in page
    # Each request queued the same job: the typed address, nothing about an account.
    assert [job[0] for job in queued] == ["till7@shop.example", "nobody@shop.example", "gone@shop.example"]
    event = AuditEvent.objects.get(action="user.password_reset_requested")
    assert event.object_id == str(person.pk)
    assert not AuditEvent.objects.filter(object_id=str(inactive.pk)).exists()


def test_the_page_does_the_same_work_for_known_and_unknown_addresses(client, person, monkeypatch):
    """Same timing class: the view runs the same queries (none on users) and queues one job."""
    jobs = []
    monkeypatch.setattr(account_tasks.password_reset_send_task, "delay", lambda *a: jobs.append(a))
    seen = {}
    for email in ("till7@shop.example", "nobody@shop.example"):
        with CaptureQueriesContext(connection) as queries:
            response = ask(client, email)
        assert response.status_code == 302
        seen[email] = [q["sql"] for q in queries.captured_queries]
    assert seen["till7@shop.example"] == seen["nobody@shop.example"]
    assert not any("auth_user" in sql for sql in seen["till7@shop.example"])
    assert len(jobs) == 2 and not mail.outbox


def test_mail_is_in_the_language_of_the_request(client, person, queued):
    ask(client, "till7@shop.example", HTTP_ACCEPT_LANGUAGE="de")
    message = mail.outbox[-1]
    assert "Passwort" in message.subject
    assert "Hallo till7" in message.body and "einmal" in message.body
    ask(client, "till7@shop.example", HTTP_ACCEPT_LANGUAGE="en")
    assert "Reset your voucher portal password" in mail.outbox[-1].subject
    assert "works once" in mail.outbox[-1].body


def test_requests_are_throttled_per_address_without_telling_who_exists(client, person, queued, settings):
    settings.PASSWORD_RESET_LIMIT_PER_EMAIL = 2
    for email in ("till7@shop.example", "nobody@shop.example"):
        for _ in range(2):
            assert ask(client, email).status_code == 302
        response = ask(client, email)
        assert response.status_code == 200
        assert "Too many password reset requests. Try again in" in response.content.decode()
    assert len(mail.outbox) == 2  # the third request for the known address sent nothing
    assert len(queued) == 4


def test_requests_are_throttled_per_client_address(client, person, queued, settings):
    settings.PASSWORD_RESET_LIMIT_PER_IP = 3
    for n in range(3):
        assert ask(client, f"someone{n}@example.com").status_code == 302
    response = ask(client, "till7@shop.example")
    assert response.status_code == 200 and "Too many password reset requests" in response.content.decode()
    assert not mail.outbox
    other = Client(REMOTE_ADDR="198.51.100.9")
    assert ask(other, "till7@shop.example").status_code == 302
    assert len(mail.outbox) == 1


def test_cache_down_refuses_with_a_message_and_sends_nothing(client, person, queued):
    with CACHE_DOWN:
        response = ask(client, "till7@shop.example")
    assert response.status_code == 200
    assert "Password reset is not available right now" in response.content.decode()
    assert not queued and not mail.outbox


def test_broker_down_says_so_and_sends_nothing(client, person, monkeypatch):
    def down(*args):
        raise OSError("broker unreachable")

    monkeypatch.setattr(account_tasks.password_reset_send_task, "delay", down)
    for email in ("till7@shop.example", "nobody@shop.example"):
        response = ask(client, email)
        assert response.status_code == 200
        assert "The e-mail could not be sent right now" in response.content.decode()
    assert not mail.outbox


@pytest.mark.parametrize(
    "email", ["", "not-an-address", "a@b", "x" * 300 + "@example.com", "a\x00@example.com"]
)
def test_bad_addresses_get_a_message_and_nothing_is_queued(client, queued, email):
    response = ask(client, email)
    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert not queued and not AuditEvent.objects.exists()


# --- Using the link -----------------------------------------------------------------------------


def test_the_link_sets_a_strong_password_once_audited_and_ends_other_sessions(client, person, queued):
    other_till = Client()
    other_till.force_login(person)
    ask(client, "till7@shop.example")
    form_url = follow_link(client, reset_link(mail.outbox[0]))
    weak = client.post(form_url, {"new_password1": "12345678", "new_password2": "12345678"})
    assert weak.status_code == 200
    errors = " ".join(weak.context["form"].errors["new_password2"])
    assert "too short" in errors and "too common" in errors
    assert User.objects.get(pk=person.pk).check_password(PASSWORD)  # nothing written
    response = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_complete")
    person = User.objects.get(pk=person.pk)
    assert person.check_password(NEW_PASSWORD)
    assert SESSION_KEY not in client.session  # a reset does not sign in
    # The session on the other till is gone, from the store and in effect.
    assert other_till.get(reverse("vouchers:home")).status_code == 302
    event = AuditEvent.objects.get(action="user.password_reset")
    assert event.actor == person and event.object_id == str(person.pk)
    assert NEW_PASSWORD not in str(event.data) + event.summary
    assert person.password not in str(list(AuditEvent.objects.values_list("data", "summary")))
    # Single use: the same link again cannot be used.
    again = client.get(reset_link(mail.outbox[0]), follow=True)
    assert again.status_code == 200 and not again.context["validlink"]
    assert "This link cannot be used" in again.content.decode()


def test_a_forged_or_garbled_link_is_refused_plainly(client, person):
    for path in (
        "/password-reset/MQ/set-password/",
        "/password-reset/%00%ff/abc-def/",
        "/password-reset/x/y/",
    ):
        response = client.get(path)
        assert response.status_code == 200 and not response.context["validlink"]
        assert (
            client.post(path, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}).status_code
            == 200
        )
    assert User.objects.get(pk=person.pk).check_password(PASSWORD)


def test_a_reset_does_not_lift_an_axes_lock_out(client, person, queued, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "till7", "password": "wrong"})
    assert AccessAttempt.objects.filter(username="till7").exists()
    ask(client, "till7@shop.example")
    form_url = follow_link(client, reset_link(mail.outbox[0]))
    client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert User.objects.get(pk=person.pk).check_password(NEW_PASSWORD)
    response = client.post(reverse("login"), {"username": "till7", "password": NEW_PASSWORD})
    assert response.status_code == 429  # still paused: the lock-out runs its course
    assert SESSION_KEY not in client.session
    assert AccessAttempt.objects.filter(username="till7").exists()


# --- Sessions ---------------------------------------------------------------------------------


def test_session_key_changes_on_login(client, person):
    client.get(reverse("login"))
    client.session.save()
    session = client.session
    session["before"] = "login"
    session.save()
    before = session.session_key
    response = client.post(reverse("login"), {"username": "till7", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session.session_key != before
    assert not Session.objects.filter(session_key=before).exists()


def _signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    assert browser.get(reverse("vouchers:home")).status_code == 200
    return browser


def test_a_change_of_groups_ends_that_persons_sessions(client, superuser, person):
    elsewhere = _signed_in(person)
    bystander = _signed_in(make_user(roles.CASHIER, username="bystander"))
    client.force_login(superuser)
    data = user_change_data(person, groups=[role_group(roles.MARKETING_MANAGER).pk])
    assert client.post(reverse("admin:auth_user_change", args=[person.pk]), data).status_code == 302
    assert elsewhere.get(reverse("vouchers:home")).status_code == 302  # to the sign-in page
    assert bystander.get(reverse("vouchers:home")).status_code == 200
    event = AuditEvent.objects.get(action="user.sessions_ended")
    assert event.object_id == str(person.pk) and event.data["sessions"] == 1
    assert "groups" in event.data["reason"]


@pytest.mark.parametrize("change", ["is_staff", "is_superuser", "user_permissions", "is_active"])
def test_other_rights_changes_end_sessions_too(client, superuser, person, change):
    elsewhere = _signed_in(person)
    client.force_login(superuser)
    overrides = {
        "is_staff": {"is_staff": "on"},
        "is_superuser": {"is_superuser": "on"},
        "user_permissions": {"user_permissions": [Permission.objects.get(codename="view_audit").pk]},
        "is_active": {"is_active": None},
    }[change]
    data = user_change_data(person, **overrides)
    assert client.post(reverse("admin:auth_user_change", args=[person.pk]), data).status_code == 302
    assert elsewhere.get(reverse("vouchers:home")).status_code == 302


def test_a_plain_field_change_keeps_sessions(client, superuser, person):
    elsewhere = _signed_in(person)
    client.force_login(superuser)
    data = user_change_data(person, first_name="Tilly")
    assert client.post(reverse("admin:auth_user_change", args=[person.pk]), data).status_code == 302
    assert elsewhere.get(reverse("vouchers:home")).status_code == 200
    assert not AuditEvent.objects.filter(action="user.sessions_ended").exists()


def test_a_password_set_by_an_admin_ends_that_persons_sessions(client, superuser, person):
    elsewhere = _signed_in(person)
    client.force_login(superuser)
    url = reverse("admin:auth_user_password_change", args=[person.pk])
    data = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    assert client.post(url, data).status_code == 302
    assert elsewhere.get(reverse("vouchers:home")).status_code == 302
    assert AuditEvent.objects.filter(action="user.sessions_ended", object_id=str(person.pk)).exists()


def test_changing_ones_own_rights_rotates_ones_own_session_and_ends_the_others(client, superuser):
    other_browser = _signed_in(superuser)
    client.force_login(superuser)
    before = client.session.session_key
    data = user_change_data(superuser, user_permissions=[Permission.objects.get(codename="view_audit").pk])
    assert client.post(reverse("admin:auth_user_change", args=[superuser.pk]), data).status_code == 302
    assert client.session.session_key != before
    assert client.get(reverse("vouchers:home")).status_code == 200  # still signed in here
    assert other_browser.get(reverse("vouchers:home")).status_code == 302
