"""Every form and upload of the portal, posted with hypothesis-generated input.

What each test holds to, whatever comes in (unicode, huge strings, NUL bytes, negative and
enormous numbers, wrong types): never a server error (status >= 500), and a rejected form
writes nothing (ledger, sales, audit, bulk sales, thresholds ... unchanged) and calls no
provider (the fake provider counts its calls). NUL matters on PostgreSQL, which refuses it in
text columns: forms must refuse it with a message before anything reaches the database.

Run it on PostgreSQL too (DATABASE_URL=postgres://...): some failures only show there.
Examples per test are few on purpose; the file runs in well under a minute.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vouchers.models import (
    AuditEvent,
    BulkSale,
    Campaign,
    Membership,
    ProviderOperation,
    Sale,
    SaleTemplate,
    StockThreshold,
)

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def standard_template(lina_campaign):
    """The LINA campaign's "Standard" template, layouts 1 and 2 (as tests/support/sales.py)."""
    return SaleTemplate.objects.create(
        campaign=lina_campaign, name="Standard", template_hash="tpl-hash-standard", allowed_layouts=[1, 2]
    )


# --- What is typed -----------------------------------------------------------------------------

NUL = "\x00"
numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        ["1e999", "-0", "0,001", "1.234,50", "\u0661\u0662", "\u0663.\u0665", "NaN", "-Infinity", "9" * 400]
    ),
)
texts = st.one_of(
    st.text(max_size=40),
    st.text(max_size=10).map(lambda s: s + NUL + s),
    st.integers(min_value=300, max_value=20_000).map(lambda n: "Ä" * n),  # huge
    st.sampled_from(["", " ", NUL, "<script>alert(1)</script>", "'; DROP TABLE x;--", "=cmd|' /C calc'!A0"]),
)
anything = st.one_of(texts, numbers)


def assert_no_server_error(response) -> None:
    assert response.status_code < 500, response.content.decode(errors="replace")[:2000]


WATCHED = [ProviderOperation, Sale, AuditEvent, BulkSale, StockThreshold, SaleTemplate, Campaign, Membership]


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in WATCHED}


def provider_calls(fake) -> int:
    return sum(fake.calls.values())


def fresh_token() -> str:
    return uuid.uuid4().hex


def hidden(response, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"'.encode(), response.content)
    assert match, f"no hidden field {name}"
    return match.group(1).decode()


# --- Cashier desk ---------------------------------------------------------------------------------


@FUZZ
@given(code=anything)
def test_desk_code_check(client, cashier, fake_provider, code):
    from django.core.exceptions import ValidationError

    from vouchers.values.parsing import parse_code

    client.force_login(cashier)
    before, calls = counts(), provider_calls(fake_provider)
    response = client.post(reverse("vouchers:desk-check", kwargs={"campaign": "lina-shop"}), {"code": code})
    assert_no_server_error(response)
    try:
        parse_code(code.strip() if NUL not in code else NUL)
    except ValidationError:
        assert counts() == before and provider_calls(fake_provider) == calls


@pytest.fixture
def checked_card(client, cashier, fake_provider):
    """A checked token: the redeem form's hidden fields, as the desk page carries them."""
    fake_provider.add_token("ABCD-EFGH-IJKL-1234", "1000.00")
    client.force_login(cashier)
    page = client.post(
        reverse("vouchers:desk-check", kwargs={"campaign": "lina-shop"}), {"code": "ABCDEFGHIJKL1234"}
    )
    return {"code": hidden(page, "code"), "check": hidden(page, "check")}


@FUZZ
@given(amount=anything, field=st.sampled_from(["amount", "code", "check", "request_token"]), junk=anything)
def test_desk_redeem_amount_and_hidden_fields(client, fake_provider, checked_card, amount, field, junk):
    data = {**checked_card, "amount": amount, "request_token": fresh_token()}
    if field != "amount":
        data[field] = junk
    before, redeems = counts(), fake_provider.calls["redeem"]
    last_operation = ProviderOperation.objects.order_by("-pk").values_list("pk", flat=True).first()
    response = client.post(reverse("vouchers:desk-redeem", kwargs={"campaign": "lina-shop"}), data)
    assert_no_server_error(response)
    if response.status_code != 302:
        assert fake_provider.calls["redeem"] == redeems
        # After one redeem went through, the card's check is stale: the ledger records that
        # refusal on purpose (an attempt, not sent). Nothing else may be written.
        new_rows = ProviderOperation.objects.filter(pk__gt=last_operation)
        assert all(r.state == "failed" and r.error_code == "BalanceChanged" for r in new_rows)
        assert counts() | {"ProviderOperation": 0} == before | {"ProviderOperation": 0}


@FUZZ
@given(state=st.one_of(st.sampled_from(["succeeded", "failed"]), anything), reason=anything)
def test_resolve_form(client, campaign_admin, cashier, lina_campaign, state, reason):
    operation = ProviderOperation.objects.create(
        campaign=lina_campaign,
        user=cashier,
        kind=ProviderOperation.Kind.REDEEM,
        state=ProviderOperation.State.UNKNOWN,
        code_masked="••••WXYZ",
        code_digest=uuid.uuid4().hex * 2,
        amount="5.00",
    )
    client.force_login(campaign_admin)
    before = counts()
    response = client.post(
        reverse("vouchers:operation-resolve", args=[operation.pk]), {"state": state, "reason": reason}
    )
    assert_no_server_error(response)
    if response.status_code != 302:
        operation.refresh_from_db()
        assert operation.state == ProviderOperation.State.UNKNOWN
        assert counts() == before


@FUZZ
@given(pk=numbers)
def test_operation_ids_in_urls(client, campaign_admin, cashier, pk):
    """Ids in URLs are digits by the URLconf; enormous ones must be a 404, not an overflow."""
    digits = re.sub(r"\D", "", pk) or "0"
    client.force_login(campaign_admin)
    for name in ("vouchers:operation-resolve", "vouchers:sale-detail", "vouchers:bulksale-detail"):
        assert_no_server_error(client.get(f"{reverse(name, args=[1]).replace('/1/', f'/{digits}/')}"))
    client.force_login(cashier)
    assert_no_server_error(
        client.get(reverse("vouchers:desk-operation", args=[1]).replace("/1/", f"/{digits}/"))
    )


# --- Selling ----------------------------------------------------------------------------------------


@FUZZ
@given(
    amount=st.one_of(st.sampled_from(["25", "25,00"]), anything),
    template=anything,
    layout=anything,
    from_name=texts,
    for_name=texts,
    email=texts,
    token=st.one_of(st.just(None), anything),
)
def test_sell_gift_token(
    client,
    marketing,
    fake_provider,
    standard_template,
    amount,
    template,
    layout,
    from_name,
    for_name,
    email,
    token,
):
    client.force_login(marketing)
    template_value = str(standard_template.pk) if template == "" else template
    data = {
        "request_token": fresh_token() if token is None else token,
        "amount": amount,
        "template": template_value,
        "layout": layout,
        "from_name": from_name,
        "for_name": for_name,
        "email": email,
    }
    before, purchases = counts(), fake_provider.calls["purchase"]
    response = client.post(reverse("vouchers:sale-sell", kwargs={"campaign": "lina-shop"}), data)
    assert_no_server_error(response)
    if response.status_code != 302:
        assert counts() == before and fake_provider.calls["purchase"] == purchases


@pytest.fixture
def allsafe_with_stock(client, marketing, fake_provider):
    fake_provider.set_stock("Takealot", "100", 50)
    client.force_login(marketing)
    client.post(reverse("vouchers:availability-refresh", kwargs={"campaign": "allsafe-vault"}))
    return fake_provider


@FUZZ
@given(voucher_type=st.one_of(st.just("Takealot|100"), anything), token=st.one_of(st.just(None), anything))
def test_allocate_voucher(client, allsafe_with_stock, voucher_type, token):
    data = {"request_token": fresh_token() if token is None else token, "voucher_type": voucher_type}
    before, allocations = counts(), allsafe_with_stock.calls["allocate"]
    response = client.post(reverse("vouchers:sale-allocate", kwargs={"campaign": "allsafe-vault"}), data)
    assert_no_server_error(response)
    if response.status_code != 302:
        assert counts() == before and allsafe_with_stock.calls["allocate"] == allocations


csv_texts = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=500).map(lambda s: s.encode("utf-8")),
    st.text(max_size=300).map(lambda s: ("\ufeffamount,template\n" + s).encode("utf-8")),
    st.lists(st.lists(anything, max_size=8), max_size=20).map(
        lambda rows: "\n".join(
            ["amount,template,layout,from,for,email"]
            + [",".join(r.replace(NUL, "") for r in row) for row in rows]
        ).encode("utf-8")
    ),
    st.integers(min_value=1, max_value=4).map(
        lambda n: ("amount,template,from\n25,Standard," + "x" * (n * 200_000) + "\n").encode()
    ),
    st.integers(min_value=1, max_value=50).map(lambda n: ("amount;template\n" + ";" * 5000 * n).encode()),
)


@FUZZ
@given(data=csv_texts, name=st.one_of(st.just("batch.csv"), texts.filter(lambda s: len(s) < 500)))
def test_bulk_csv_upload(client, marketing, fake_provider, standard_template, data, name):
    client.force_login(marketing)
    before = counts()
    upload = SimpleUploadedFile(name.replace("/", "") or "x", data, content_type="text/csv")
    response = client.post(
        reverse("vouchers:bulksale-upload", kwargs={"campaign": "lina-shop"}), {"file": upload}
    )
    assert_no_server_error(response)
    assert provider_calls(fake_provider) == 0  # an upload only previews; nothing is sold yet
    if response.status_code != 302:
        assert counts() == before


# --- Lists and their filters (GET parameters) -------------------------------------------------------

SALE_PARAMS = ["campaign", "sold_after", "sold_before", "seller", "state", "kind", "amount_min", "amount_max"]
AUDIT_PARAMS = ["campaign", "action", "actor_name", "since", "until"]
COMMON_PARAMS = ["sort", "page", "export", "per_page"]


@FUZZ
@given(params=st.dictionaries(st.sampled_from(SALE_PARAMS + AUDIT_PARAMS + COMMON_PARAMS), anything))
def test_list_filters(client, campaign_admin, params):
    client.force_login(campaign_admin)
    for name in ("vouchers:sale-list", "vouchers:sale-export", "vouchers:audit-list"):
        before = counts()
        assert_no_server_error(client.get(reverse(name), params))
        assert counts() == before
    assert_no_server_error(client.get(reverse("vouchers:stock-detail", args=["allsafe-vault"]), params))


# --- Stock thresholds ----------------------------------------------------------------------------


@FUZZ
@given(
    default=anything,
    total=st.one_of(st.integers(min_value=-5, max_value=10**12).map(str), anything),
    initial=anything,
    rows=st.lists(st.tuples(anything, anything, anything, st.booleans()), max_size=4),
)
def test_stock_thresholds(client, campaign_admin, allsafe_campaign, default, total, initial, rows):
    client.force_login(campaign_admin)
    data = {
        "default_threshold": default,
        "overrides-TOTAL_FORMS": total,
        "overrides-INITIAL_FORMS": initial,
    }
    for index, (vendor, value, threshold, delete) in enumerate(rows):
        data |= {
            f"overrides-{index}-vendor": vendor,
            f"overrides-{index}-value": value,
            f"overrides-{index}-threshold": threshold,
        }
        if delete:
            data[f"overrides-{index}-DELETE"] = "on"
    before = counts()
    response = client.post(reverse("vouchers:stock-thresholds", args=[allsafe_campaign.slug]), data)
    assert_no_server_error(response)
    if response.status_code != 302:
        assert counts() == before


# --- Sign-in and language ----------------------------------------------------------------------


@FUZZ
@given(username=anything, password=anything, next_url=anything)
def test_login_form(client, cashier, username, password, next_url):
    before_users = get_user_model().objects.count()
    before = counts()
    response = client.post(
        reverse("login") + "?next=/", {"username": username, "password": password, "next": next_url}
    )
    assert_no_server_error(response)
    admin_login = client.post(reverse("admin:login"), {"username": username, "password": password})
    assert_no_server_error(admin_login)
    assert get_user_model().objects.count() == before_users and counts() == before


@FUZZ
@given(email=anything)
def test_password_reset_request(client, cashier, monkeypatch, email):
    from django.core import mail

    from vouchers.tasks import accounts as account_tasks

    queued = []
    monkeypatch.setattr(account_tasks.password_reset_send_task, "delay", lambda *args: queued.append(args))
    before = counts()
    response = client.post(reverse("password_reset"), {"email": email})
    assert_no_server_error(response)
    if response.status_code == 200:  # refused: a message on the form, nothing queued or written
        assert response.context["form"].errors
        assert not queued and counts() == before
    assert not mail.outbox


def reset_form_url(client, user) -> str:
    """A fresh reset link for ``user``, followed: the set-password form's address."""
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    link = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    response = client.get(link)
    assert response.status_code == 302
    return response["Location"]


@FUZZ
@given(password1=anything, password2=st.one_of(st.none(), anything))
def test_password_reset_new_password(client, cashier, password1, password2):
    from django.contrib.auth.password_validation import validate_password

    from ..support.factories import PASSWORD

    user = get_user_model().objects.get(pk=cashier.pk)
    url = reset_form_url(client, user)
    before = counts()
    response = client.post(
        url, {"new_password1": password1, "new_password2": password1 if password2 is None else password2}
    )
    assert_no_server_error(response)
    user = get_user_model().objects.get(pk=cashier.pk)
    if response.status_code == 200:  # refused: a message, the old password stands, nothing audited
        assert response.context["form"].errors
        assert user.check_password(PASSWORD) and counts() == before
    else:  # accepted: it meets every validator; the old password goes back for the next example
        assert response.status_code == 302 and user.check_password(password1)
        validate_password(password1, user)
        user.set_password(PASSWORD)
        user.save()


@FUZZ
@given(language=anything, next_url=anything, signed_in=st.booleans())
def test_language_switch(client, cashier, language, next_url, signed_in):
    if signed_in:
        client.force_login(cashier)
    response = client.post(reverse("set_language"), {"language": language, "next": next_url})
    assert_no_server_error(response)


# --- Admin forms ------------------------------------------------------------------------------------

CAMPAIGN_FIELDS = [
    "name",
    "slug",
    "provider",
    "base_url",
    "connect_timeout",
    "read_timeout",
    "api_username",
    "new_password",
    "new_shared_key",
    "lina_hash_recipe",
    "lina_login_user_field",
    "sale_min_amount",
    "sale_max_amount",
    "allsafe_allocate_path",
    "poll_interval_minutes",
    "low_stock_threshold",
    "stale_after_intervals",
    "starts_on",
    "ends_on",
]


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(CAMPAIGN_FIELDS), anything, min_size=1), add=st.booleans())
def test_admin_campaign_forms(client, superuser, lina_campaign, fields, add):
    from tests.admin.test_credentials import campaign_form_data

    client.force_login(superuser)
    data = campaign_form_data(lina_campaign, **fields)
    if add:
        url = reverse("admin:vouchers_campaign_add")
        data.setdefault("slug", "fuzzed")
    else:
        url = reverse("admin:vouchers_campaign_change", args=[lina_campaign.pk])
    before = counts()
    response = client.post(url, data)
    assert_no_server_error(response)
    if response.status_code != 302:
        assert counts() == before


@FUZZ
@given(user=anything, campaign=anything)
def test_admin_membership_form(client, campaign_admin, user, campaign):
    client.force_login(campaign_admin)
    before = counts()
    response = client.post(reverse("admin:vouchers_membership_add"), {"user": user, "campaign": campaign})
    assert_no_server_error(response)
    assert counts() == before  # no fuzzed value names a real user and campaign


@FUZZ
@given(name=anything, template_hash=anything, layouts=anything, campaign=st.one_of(st.none(), anything))
def test_admin_sale_template_form(
    client, campaign_admin, lina_campaign, name, template_hash, layouts, campaign
):
    client.force_login(campaign_admin)
    data = {
        "campaign": lina_campaign.pk if campaign is None else campaign,
        "name": name,
        "template_hash": template_hash,
        "layouts_text": layouts,
        "is_active": "on",
    }
    before = counts()
    response = client.post(reverse("admin:vouchers_saletemplate_add"), data)
    assert_no_server_error(response)
    if response.status_code != 302:
        assert counts() == before


@FUZZ
@given(username=anything, email=anything, first_name=anything, password=anything)
def test_admin_user_forms(client, superuser, cashier, username, email, first_name, password):
    client.force_login(superuser)
    before = counts()
    add = client.post(
        reverse("admin:auth_user_add"),
        {"username": username, "usable_password": "true", "password1": password, "password2": password},
    )
    assert_no_server_error(add)
    change = client.post(
        reverse("admin:auth_user_change", args=[cashier.pk]),
        {
            "username": username,
            "email": email,
            "first_name": first_name,
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert_no_server_error(change)
    if add.status_code != 302 and change.status_code != 302:
        assert counts() == before
    password_page = reverse("admin:auth_user_password_change", args=[cashier.pk])
    assert_no_server_error(client.post(password_page, {"password1": password, "password2": password}))


# --- NUL is refused with a message, field by field ----------------------------------------------

NUL_REFUSED = "Null characters are not allowed."


def _nul_cases(world):
    """(user, url, data) posts with a NUL in one text field each."""
    lina, allsafe = world["lina"], world["allsafe"]
    return [
        ("cashier", reverse("vouchers:desk-check", args=[lina.slug]), {"code": "ABCD\x00EFGHIJKL1234"}),
        (
            "campaign_admin",
            reverse("vouchers:operation-resolve", args=[world["operation"].pk]),
            {"state": "failed", "reason": "checked\x00"},
        ),
        (
            "marketing",
            reverse("vouchers:sale-sell", args=[lina.slug]),
            {
                "request_token": fresh_token(),
                "amount": "25",
                "template": world["template"].pk,
                "for_name": "A\x00",
            },
        ),
        (
            "campaign_admin",
            reverse("vouchers:stock-thresholds", args=[allsafe.slug]),
            {
                "default_threshold": "5",
                "overrides-TOTAL_FORMS": "1",
                "overrides-INITIAL_FORMS": "0",
                "overrides-0-vendor": "Take\x00alot",
                "overrides-0-threshold": "3",
            },
        ),
        (
            "campaign_admin",
            reverse("admin:vouchers_saletemplate_add"),
            {"campaign": lina.pk, "name": "X\x00", "template_hash": "h", "layouts_text": ""},
        ),
        (None, reverse("login"), {"username": "cashier\x00", "password": "x"}),
        (None, reverse("password_reset"), {"email": "cashier\x00@example.com"}),
    ]


def test_nul_in_any_text_field_is_refused_with_a_message(
    client,
    cashier,
    marketing,
    campaign_admin,
    lina_campaign,
    allsafe_campaign,
    standard_template,
    fake_provider,
):
    operation = ProviderOperation.objects.create(
        campaign=lina_campaign,
        user=cashier,
        kind=ProviderOperation.Kind.REDEEM,
        state=ProviderOperation.State.UNKNOWN,
        code_masked="••••WXYZ",
        code_digest="e" * 64,
        amount="5.00",
    )
    world = {
        "lina": lina_campaign,
        "allsafe": allsafe_campaign,
        "operation": operation,
        "template": standard_template,
    }
    users = {"cashier": cashier, "marketing": marketing, "campaign_admin": campaign_admin}
    for role, url, data in _nul_cases(world):
        client.logout()
        if role:
            client.force_login(users[role])
        before = counts()
        response = client.post(url, data)
        assert response.status_code == 200, (url, response.status_code)
        assert NUL_REFUSED in response.content.decode(), url
        assert counts() == before and provider_calls(fake_provider) == 0, url


LEDGER_PARAMS = ["campaign", "kind", "state", "user", "since", "until", "reference", "same_code_as"]


@FUZZ
@given(params=st.dictionaries(st.sampled_from(LEDGER_PARAMS + COMMON_PARAMS), anything))
def test_ledger_filters(client, campaign_admin, params):
    client.force_login(campaign_admin)
    before = counts()
    assert_no_server_error(client.get(reverse("vouchers:ledger-list"), params))
    assert counts() == before
