"""Demo data: the accounts the portal's ``seed_demo`` campaigns use, tokens in every state,
templates with layouts, and Allsafe vaults with healthy, low and empty stock.

The codes are fixed and readable so a demo script or a person at the keyboard can type them.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from .allsafe import set_stock
from .formats import berlin_today
from .lina import new_token
from .state import AllsafeCampaign, LinaAccount, Store, Template

LINA_ACCOUNTS = [
    ("demo-shop", "demo-lina-password", "demo-lina-shared-key"),
    ("second-shop", "second-lina-password", "second-lina-shared-key"),
]

TEMPLATES = {
    "demo-shop": [
        Template("Geburtstag", "5f0c2b7e9a1d4c38", {1, 2}),
        Template("Weihnachten", "b81e6d0a3c9f4a27", {3}),
        Template("Allgemein", "0d4e7a9c2f6b1835", set()),
        Template("Menü komplett", "7a2d9e4f1b6c3058", {1}, full_value_only=True),
    ],
    "second-shop": [Template("Standard", "9c2e5b1a7d3f4e60", {1})],
}

# code, account, value, remaining, days valid (negative: expired), full value only, blocked, what
TOKENS = [
    ("DEMOHEALTHY00100", "demo-shop", "100.00", None, 365, False, False, "healthy, partial allowed"),
    ("DEMOHEALTHY00075", "demo-shop", "75.00", None, 400, False, False, "healthy, partial allowed"),
    ("DEMOHEALTHY00020", "demo-shop", "20.00", None, 200, False, False, "healthy, partial allowed"),
    ("DEMOPARTIAL50EUR", "demo-shop", "50.00", None, 365, False, False, "partial allowed"),
    ("DEMOPARTLY20LEFT", "demo-shop", "50.00", "20.00", 365, False, False, "partly used, 20 left"),
    ("DEMOFULLONLY2500", "demo-shop", "25.00", None, 365, True, False, "full value only"),
    ("DEMOEXPIRED30EUR", "demo-shop", "30.00", None, -30, False, False, "expired"),
    ("DEMOUSEDUP000000", "demo-shop", "40.00", "0.00", 365, False, False, "used up"),
    ("DEMOBLOCKED00015", "demo-shop", "15.00", None, 365, False, True, "blocked (token Invalid)"),
    ("DEMOBIGVALUE1500", "demo-shop", "1500.00", None, 365, False, False, "thousands separator"),
    ("SECONDSHOP000050", "second-shop", "50.00", None, 365, False, False, "healthy, partial allowed"),
    ("SECONDSHOPFULL30", "second-shop", "30.00", None, 365, True, False, "full value only"),
]

ALLSAFE_VENDORS = ["Takealot", "Checkers", "Netflorist", "Uber Eats", "Woolworths"]

# vault, vendor, value, count — healthy, low (below 10) and empty; Woolworths is known, never stocked.
ALLSAFE_STOCK = [
    ("Main vault", "Takealot", 100, 25),
    ("Main vault", "Takealot", 250, 6),
    ("Main vault", "Checkers", 50, 40),
    ("Main vault", "Checkers", 100, 0),
    ("Promo vault", "Netflorist", 200, 3),
    ("Promo vault", "Uber Eats", 150, 12),
    ("Promo vault", "Takealot", 100, 5),
]

ALLSAFE_CAMPAIGNS = [
    # username, password, options
    (
        "demo-allsafe",
        "demo-allsafe-password",
        {"name": "Demo vault", "vaults": ["Main vault", "Promo vault"]},
    ),
    ("revoked-allsafe", "revoked-allsafe-password", {"vaults": ["Main vault"], "integration_active": False}),
    ("pending-allsafe", "pending-allsafe-password", {"vaults": ["Main vault"], "status": "pending"}),
    ("novault-allsafe", "novault-allsafe-password", {"vaults": []}),
]


def seed_demo(store: Store) -> None:
    """Add (or restore) the demo data. Other state is left as it is."""
    today = berlin_today()
    with store.lock:
        for username, password, key in LINA_ACCOUNTS:
            account = LinaAccount(username, password, key, **store.lina_defaults)
            account.templates = {t.hash: Template(**vars(t)) for t in TEMPLATES[username]}
            store.lina_accounts[username] = account
        for code, account, value, remaining, days, full_only, blocked, _what in TOKENS:
            new_token(
                store,
                account=account,
                code=code,
                value=Decimal(value),
                remaining=Decimal(remaining) if remaining is not None else None,
                valid_until=today + timedelta(days=days),
                full_value_only=full_only,
                blocked=blocked,
            )
        for vendor in ALLSAFE_VENDORS:
            store.allsafe_vendors[vendor.lower()] = vendor
        for vault in {row[0] for row in ALLSAFE_STOCK}:
            store.allsafe_vaults.pop(vault, None)
        for vault, vendor, value, count in ALLSAFE_STOCK:
            set_stock(store, vault=vault, vendor=vendor, value=Decimal(value), count=count, today=today)
        for username, password, options in ALLSAFE_CAMPAIGNS:
            store.allsafe_campaigns[username] = AllsafeCampaign(username, password, **options)


def demo_summary(base_url: str) -> str:
    """What ``python -m sandbox`` prints at start: where to point campaigns and what to type."""
    lines = [
        f"LINA base URL:    {base_url}/lina/extern/tokenapi",
        f"Allsafe base URL: {base_url}/allsafe",
        f"Control page:     {base_url}/_sandbox/",
        "",
        "LINA accounts (user / password / shared key), login recipe md5(md5(password)+ip+key):",
    ]
    lines += [f"  {u} / {p} / {k}" for u, p, k in LINA_ACCOUNTS]
    lines.append("LINA templates (name: hash, layouts):")
    for account, templates in TEMPLATES.items():
        for t in templates:
            layouts = ",".join(map(str, sorted(t.layouts))) or "none"
            lines.append(f"  {account:<12} {t.name}: {t.hash}, layouts {layouts}")
    lines.append("LINA demo tokens:")
    for code, account, value, remaining, _days, _full, _blocked, what in TOKENS:
        left = f", {remaining} left" if remaining is not None else ""
        lines.append(f"  {code}  {account:<12} {value} €{left}  ({what})")
    lines.append("Allsafe campaigns (user / password):")
    for username, password, options in ALLSAFE_CAMPAIGNS:
        state = (
            "revoked"
            if options.get("integration_active") is False
            else options.get("status", "live")
            if options.get("vaults")
            else "no vault"
        )
        lines.append(f"  {username} / {password}  ({state})")
    lines.append("Allsafe stock (vault, vendor, value: count):")
    lines += [f"  {vault}: {vendor} R{value}: {count}" for vault, vendor, value, count in ALLSAFE_STOCK]
    return "\n".join(lines)
