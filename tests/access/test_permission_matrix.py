"""The permission matrix: every URL of the portal and every role → the expected answer.

Built from the URLconf: a URL pattern without a rule in RULES fails the suite, so no new page
can ship without someone deciding who may open it. Campaign-scoped pages are opened on a
campaign the role works on; the "outsider" is a campaign admin of a *different* campaign and
must get 404 there (the campaign's existence is not revealed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from vouchers.access import roles

from ..support.factories import UserFactory, make_user

ROLES = ["anonymous", "cashier", "marketing", "campaign_admin", "superuser", "outsider"]

OK, LOGIN, FORBIDDEN, NOT_FOUND, REDIRECT = 200, "login", 403, 404, 302


@dataclass(frozen=True)
class Rule:
    expected: dict[str, object]
    #: URL kwargs, or a callable taking the test's ``world`` dict and returning them.
    kwargs: dict[str, str] | Callable[[dict], dict] = field(default_factory=dict)
    method: str = "get"


def everyone(answer, **overrides) -> dict[str, object]:
    return {role: overrides.get(role, answer) for role in ROLES}


def signed_in(answer, **overrides) -> dict[str, object]:
    return everyone(answer, **{"anonymous": LOGIN, **overrides})


LINA = {"campaign": "lina-shop"}
ALLSAFE = {"campaign": "allsafe-vault"}


def a_gift_token_sale(world: dict) -> dict:
    return {"pk": world["sale"].pk}


def an_open_sale(world: dict) -> dict:
    """A gift token sale whose answer was lost (needs review)."""
    return {"pk": world["open_sale"].pk}


def a_bulk_sale(world: dict) -> dict:
    return {"pk": world["bulk_sale"].pk}


def the_cashier(world: dict) -> dict:
    """The cashier (of the LINA and Allsafe campaigns), a person the campaign admin manages."""
    return {"pk": world["users"]["cashier"].pk}


def cashiers_unknown_redeem(world: dict) -> dict:
    """An unresolved redeem made by the cashier on the LINA campaign."""
    return {"pk": world["unknown_redeem"].pk}


# url name → Rule. Admin URLs are covered by one representative rule ("admin:index") plus the
# admin's own tests; the admin is staff-only and scoped inside (tests/access/test_access.py).
RULES: dict[str, Rule] = {
    "login": Rule(
        everyone(
            OK,
            cashier=REDIRECT,
            marketing=REDIRECT,
            campaign_admin=REDIRECT,
            superuser=REDIRECT,
            outsider=REDIRECT,
        )
    ),
    "logout": Rule(everyone(REDIRECT), method="post"),
    # Password reset by e-mail: public pages (they reveal nothing about who has an account).
    "password_reset": Rule(everyone(OK)),
    "password_reset_done": Rule(everyone(OK)),
    # A forged link: the "this link cannot be used" page, for everyone.
    "password_reset_confirm": Rule(everyone(OK), kwargs={"uidb64": "MQ", "token": "set-password"}),
    "password_reset_complete": Rule(everyone(OK)),
    "set_language": Rule(everyone(REDIRECT), method="post"),
    "healthz": Rule(everyone(OK)),
    "readyz": Rule(everyone(OK)),
    "admin:index": Rule(
        signed_in(FORBIDDEN, campaign_admin=OK, superuser=OK, outsider=OK, anonymous=REDIRECT)
    ),
    "vouchers:home": Rule(signed_in(OK)),
    "vouchers:campaign-detail": Rule(signed_in(OK, outsider=NOT_FOUND), kwargs=LINA),
    "vouchers:audit-list": Rule(signed_in(FORBIDDEN, campaign_admin=OK, superuser=OK, outsider=OK)),
    "vouchers:provider-health": Rule(signed_in(FORBIDDEN, campaign_admin=OK, superuser=OK, outsider=OK)),
    # The ledger: those who answer "what happened to this voucher"; scoped inside.
    "vouchers:ledger-list": Rule(signed_in(FORBIDDEN, campaign_admin=OK, superuser=OK, outsider=OK)),
    # Its code search is a POST (the code stays out of URLs); an empty one goes back to the ledger.
    "vouchers:ledger-search": Rule(
        signed_in(FORBIDDEN, campaign_admin=REDIRECT, superuser=REDIRECT, outsider=REDIRECT), method="post"
    ),
    # People: campaign admins manage the cashiers and marketing managers of their campaigns.
    "vouchers:people-list": Rule(signed_in(FORBIDDEN, campaign_admin=OK, superuser=OK, outsider=OK)),
    "vouchers:person-create": Rule(signed_in(FORBIDDEN, campaign_admin=OK, superuser=OK, outsider=OK)),
    "vouchers:person-detail": Rule(
        signed_in(FORBIDDEN, campaign_admin=OK, superuser=OK, outsider=NOT_FOUND), kwargs=the_cashier
    ),
    "vouchers:person-active": Rule(
        signed_in(FORBIDDEN, campaign_admin=REDIRECT, superuser=REDIRECT, outsider=NOT_FOUND),
        kwargs=the_cashier,
        method="post",
    ),
    # Stock monitoring (Allsafe): marketing and admins see stock, admins set thresholds.
    "vouchers:stock-dashboard": Rule(
        signed_in(FORBIDDEN, marketing=OK, campaign_admin=OK, superuser=OK, outsider=OK)
    ),
    "vouchers:stock-detail": Rule(
        signed_in(FORBIDDEN, marketing=OK, campaign_admin=OK, superuser=OK, outsider=NOT_FOUND),
        kwargs=ALLSAFE,
    ),
    # Cashier desk (LINA). Campaign admins settle unknown outcomes; they do not redeem.
    # A cashier with one LINA campaign goes straight to its desk.
    "vouchers:desk-home": Rule(signed_in(FORBIDDEN, cashier=REDIRECT, superuser=OK)),
    "vouchers:desk-today": Rule(signed_in(FORBIDDEN, cashier=OK, superuser=OK)),
    # Day close: the cashier's own Z-report; campaign admins see every cashier of their campaigns.
    "vouchers:desk-preferences": Rule(
        signed_in(FORBIDDEN, cashier=REDIRECT, superuser=REDIRECT), method="post"
    ),
    "vouchers:desk-close": Rule(signed_in(FORBIDDEN, cashier=OK, superuser=OK)),
    "vouchers:desk-close-csv": Rule(signed_in(FORBIDDEN, cashier=OK, superuser=OK)),
    "vouchers:day-close": Rule(signed_in(FORBIDDEN, campaign_admin=OK, superuser=OK, outsider=OK)),
    "vouchers:day-close-csv": Rule(signed_in(FORBIDDEN, campaign_admin=OK, superuser=OK, outsider=OK)),
    "vouchers:desk-check": Rule(signed_in(FORBIDDEN, cashier=OK, superuser=OK), kwargs=LINA),
    "vouchers:desk-redeem": Rule(signed_in(FORBIDDEN, cashier=REDIRECT, superuser=REDIRECT), kwargs=LINA),
    "vouchers:desk-operation": Rule(
        signed_in(FORBIDDEN, cashier=OK, superuser=OK), kwargs=cashiers_unknown_redeem
    ),
    "vouchers:operation-review": Rule(signed_in(FORBIDDEN, campaign_admin=OK, superuser=OK, outsider=OK)),
    "vouchers:operation-resolve": Rule(
        signed_in(FORBIDDEN, campaign_admin=OK, superuser=OK, outsider=NOT_FOUND),
        kwargs=cashiers_unknown_redeem,
    ),
    # Selling: marketing sells; admins see sales but do not sell; full codes need view_full_codes.
    "vouchers:sale-start": Rule(signed_in(FORBIDDEN, marketing=OK, superuser=OK)),
    "vouchers:sale-sell": Rule(signed_in(FORBIDDEN, marketing=OK, superuser=OK), kwargs=LINA),
    "vouchers:sale-allocate": Rule(signed_in(FORBIDDEN, marketing=OK, superuser=OK), kwargs=ALLSAFE),
    "vouchers:availability-refresh": Rule(
        signed_in(FORBIDDEN, marketing=REDIRECT, superuser=REDIRECT), kwargs=ALLSAFE, method="post"
    ),
    "vouchers:sale-list": Rule(
        signed_in(FORBIDDEN, marketing=OK, campaign_admin=OK, superuser=OK, outsider=OK)
    ),
    "vouchers:sale-export": Rule(
        signed_in(FORBIDDEN, marketing=OK, campaign_admin=OK, superuser=OK, outsider=OK)
    ),
    # The code search is a POST (the code stays out of URLs); an empty one goes back to the list.
    "vouchers:sale-search": Rule(
        signed_in(
            FORBIDDEN, marketing=REDIRECT, campaign_admin=REDIRECT, superuser=REDIRECT, outsider=REDIRECT
        ),
        method="post",
    ),
    # "Send to customer again" mails the full code: roles that sell and see full codes.
    "vouchers:sale-email": Rule(signed_in(FORBIDDEN, marketing=OK, superuser=OK), kwargs=a_gift_token_sale),
    "vouchers:sale-detail": Rule(
        signed_in(FORBIDDEN, marketing=OK, campaign_admin=OK, superuser=OK, outsider=NOT_FOUND),
        kwargs=a_gift_token_sale,
    ),
    "vouchers:sale-print": Rule(
        signed_in(FORBIDDEN, marketing=OK, campaign_admin=OK, superuser=OK, outsider=NOT_FOUND),
        kwargs=a_gift_token_sale,
    ),
    "vouchers:sale-resolve": Rule(
        signed_in(FORBIDDEN, campaign_admin=OK, superuser=OK, outsider=NOT_FOUND), kwargs=an_open_sale
    ),
    "vouchers:sale-qr": Rule(signed_in(FORBIDDEN, marketing=OK, superuser=OK), kwargs=a_gift_token_sale),
    "vouchers:bulksale-upload": Rule(signed_in(FORBIDDEN, marketing=OK, superuser=OK), kwargs=LINA),
    "vouchers:bulksale-template": Rule(signed_in(FORBIDDEN, marketing=OK, superuser=OK)),
    "vouchers:bulksale-detail": Rule(signed_in(FORBIDDEN, marketing=OK, superuser=OK), kwargs=a_bulk_sale),
    "vouchers:bulksale-progress": Rule(signed_in(FORBIDDEN, marketing=OK, superuser=OK), kwargs=a_bulk_sale),
    "vouchers:bulksale-result": Rule(signed_in(FORBIDDEN, marketing=OK, superuser=OK), kwargs=a_bulk_sale),
    "vouchers:bulksale-start": Rule(
        signed_in(FORBIDDEN, marketing=REDIRECT, superuser=REDIRECT), kwargs=a_bulk_sale, method="post"
    ),
    "vouchers:bulksale-cancel": Rule(
        signed_in(FORBIDDEN, marketing=REDIRECT, superuser=REDIRECT), kwargs=a_bulk_sale, method="post"
    ),
    "vouchers:bulksale-resume": Rule(
        signed_in(FORBIDDEN, marketing=REDIRECT, superuser=REDIRECT), kwargs=a_bulk_sale, method="post"
    ),
    "vouchers:stock-thresholds": Rule(
        signed_in(FORBIDDEN, campaign_admin=OK, superuser=OK, outsider=NOT_FOUND), kwargs=ALLSAFE
    ),
}


def _named_patterns(resolver: URLResolver, prefix: str = "") -> list[str]:
    names = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            namespace = f"{prefix}{entry.namespace}:" if entry.namespace else prefix
            if entry.namespace == "admin":
                continue  # one representative rule; see RULES["admin:index"]
            names += _named_patterns(entry, namespace)
        elif isinstance(entry, URLPattern) and entry.name:
            names.append(prefix + entry.name)
    return names


def test_every_url_has_a_rule():
    missing = sorted(set(_named_patterns(get_resolver())) - set(RULES))
    assert not missing, (
        f"URL patterns without a permission rule in tests/access/test_permission_matrix.py: {missing}"
    )


@pytest.fixture
def world(lina_campaign, allsafe_campaign, other_campaign):
    """One user per role, and the objects that detail pages are opened on."""
    from vouchers.models import BulkSale, ProviderOperation, Sale
    from vouchers.models.sales import SaleKind

    users = {
        "anonymous": None,
        "superuser": UserFactory(username="root", is_superuser=True, is_staff=True),
        "outsider": make_user(roles.CAMPAIGN_ADMIN, other_campaign, username="outsider"),
    }
    for role, role_name in (
        ("cashier", roles.CASHIER),
        ("marketing", roles.MARKETING_MANAGER),
        ("campaign_admin", roles.CAMPAIGN_ADMIN),
    ):
        users[role] = make_user(role_name, lina_campaign, allsafe_campaign, username=role)
    unknown_redeem = ProviderOperation.objects.create(
        campaign=lina_campaign,
        user=users["cashier"],
        kind=ProviderOperation.Kind.REDEEM,
        state=ProviderOperation.State.UNKNOWN,
        code_masked="••••WXYZ",
        code_digest="d" * 64,
        amount="5.00",
    )
    purchase = ProviderOperation.objects.create(
        campaign=lina_campaign,
        user=users["marketing"],
        kind=ProviderOperation.Kind.PURCHASE,
        state=ProviderOperation.State.SUCCEEDED,
        code_masked="••••MNOP",
        amount="25.00",
    )
    sale = Sale.objects.create(
        campaign=lina_campaign,
        operation=purchase,
        seller=users["marketing"],
        kind=SaleKind.GIFT_TOKEN,
        amount="25.00",
        full_code="ABCDEFGHIJKLMNOP",
        code_masked="••••MNOP",
    )
    lost = ProviderOperation.objects.create(
        campaign=lina_campaign,
        user=users["marketing"],
        kind=ProviderOperation.Kind.PURCHASE,
        state=ProviderOperation.State.NEEDS_REVIEW,
        amount="25.00",
    )
    open_sale = Sale.objects.create(
        campaign=lina_campaign,
        operation=lost,
        seller=users["marketing"],
        kind=SaleKind.GIFT_TOKEN,
        amount="25.00",
    )
    bulk_sale = BulkSale.objects.create(
        campaign=lina_campaign, created_by=users["marketing"], filename="x.csv"
    )
    return {
        "users": users,
        "unknown_redeem": unknown_redeem,
        "sale": sale,
        "open_sale": open_sale,
        "bulk_sale": bulk_sale,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url_name", sorted(RULES))
def test_permission_matrix(client, world, role, url_name):
    rule = RULES[url_name]
    user = world["users"][role]
    if user is not None:
        client.force_login(user)
    kwargs = rule.kwargs(world) if callable(rule.kwargs) else rule.kwargs
    url = reverse(url_name, kwargs=kwargs or None)
    data = {"language": "en", "next": "/"} if url_name == "set_language" else {}
    response = getattr(client, rule.method)(url, data)
    expected = rule.expected[role]
    if expected == LOGIN:
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), (
            f"{url_name} as {role}: expected a redirect to login, got {response.status_code}"
        )
    else:
        assert response.status_code == expected, (
            f"{url_name} as {role}: expected {expected}, got {response.status_code}"
        )
    if response.status_code == 200 and response.get("Content-Type", "").startswith("text/html"):
        assert "Content-Security-Policy" in response
