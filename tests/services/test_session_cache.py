"""Sessions are read from the cache (portal/sessions.py, ``cached_db``): ending a person's
sessions (services/accounts.user_sessions_end) must drop the cached copies as well, or a till
would stay signed in with the old rights until the cached copy expired."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.module_loading import import_string

from tests.support.factories import make_user
from vouchers.access import roles
from vouchers.services.accounts import user_sessions_end

pytestmark = pytest.mark.django_db

HOME = reverse("vouchers:home")


def signed_in(client: Client) -> bool:
    return client.get(HOME).status_code == 200


def cached(client: Client) -> bool:
    store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(client.session.session_key)
    return store._cache.get(store.cache_key) is not None


def test_a_signed_in_request_reads_its_session_from_the_cache(lina_campaign):
    user = make_user(roles.CASHIER, lina_campaign)
    client = Client()
    client.force_login(user)
    assert cached(client)
    with CaptureQueriesContext(connection) as queries:
        assert signed_in(client)
    assert not [q["sql"] for q in queries if "django_session" in q["sql"]]


def test_ending_a_persons_sessions_drops_the_cached_copies(lina_campaign):
    user = make_user(roles.CASHIER, lina_campaign)
    other = make_user(roles.CASHIER, lina_campaign)
    till, office, kept, bystander = Client(), Client(), Client(), Client()
    for client in (till, office, kept):
        client.force_login(user)
    bystander.force_login(other)
    assert all(signed_in(c) and cached(c) for c in (till, office, kept, bystander))

    ended = user_sessions_end(actor=None, user=user, reason="test", keep_session_key=kept.session.session_key)

    assert ended == 2
    for client in (till, office):
        assert not cached(client)
        assert not Session.objects.filter(session_key=client.session.session_key).exists()
        assert not signed_in(client)
    assert signed_in(kept) and cached(kept)
    assert signed_in(bystander)


def test_the_cached_copy_alone_would_keep_a_session_alive(lina_campaign):
    """Why the cache must be cleared too: the database row alone does not end a cached session."""
    user = make_user(roles.CASHIER, lina_campaign)
    client = Client()
    client.force_login(user)
    Session.objects.filter(session_key=client.session.session_key).delete()
    assert signed_in(client)  # still served from the cache
    # user_sessions_end finds sessions by their rows: with the row gone it cannot, so ending
    # sessions must never delete rows without the store (which drops the cached copy first).
    import_string(f"{settings.SESSION_ENGINE}.SessionStore")(client.session.session_key).delete()
    assert not signed_in(client)
