"""Create demo users (one per role and a superuser) and demo campaigns on the sandbox providers.

Safe to run again: existing rows are updated, nothing is duplicated. Refuses in production.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from vouchers.access import roles
from vouchers.models import Campaign, Membership, SaleTemplate
from vouchers.services.stock_demo import stock_demo_history

DEMO_USERS = [
    # username, password, role (None: superuser), campaigns (slugs)
    ("cashier", "cashier-demo-2026", roles.CASHIER, ["demo-lina"]),
    ("marketing", "marketing-demo-2026", roles.MARKETING_MANAGER, ["demo-lina", "demo-allsafe"]),
    ("campaignadmin", "campaignadmin-demo-2026", roles.CAMPAIGN_ADMIN, ["demo-lina", "demo-allsafe"]),
    ("admin", "admin-demo-2026", None, []),
]

# Credentials the sandbox providers accept (sandbox/ seeds the same values).
DEMO_CAMPAIGNS = [
    {
        "slug": "demo-lina",
        "name": "Demo LINA gift tokens",
        "provider": "lina",
        "path": "/lina/extern/tokenapi",
        "username": "demo-shop",
        "password": "demo-lina-password",
        "shared_key": "demo-lina-shared-key",
    },
    {
        "slug": "demo-allsafe",
        "name": "Demo Allsafe vault",
        "provider": "allsafe",
        "path": "/allsafe",
        "username": "demo-allsafe",
        "password": "demo-allsafe-password",
        "shared_key": "",
    },
    {
        "slug": "second-lina",
        "name": "Second shop (LINA)",
        "provider": "lina",
        "path": "/lina/extern/tokenapi",
        "username": "second-shop",
        "password": "second-lina-password",
        "shared_key": "second-lina-shared-key",
    },
]


# Gift-token templates as the sandbox's LINA accounts know them (hash, allowed layouts).
DEMO_TEMPLATES = {
    "demo-lina": [
        ("Geburtstag", "5f0c2b7e9a1d4c38", [1, 2]),
        ("Weihnachten", "b81e6d0a3c9f4a27", [3]),
        ("Allgemein", "0d4e7a9c2f6b1835", []),
        ("Menü komplett", "7a2d9e4f1b6c3058", [1]),
    ],
    "second-lina": [("Standard", "9c2e5b1a7d3f4e60", [1])],
}

# The demo vaults' stock per voucher type, both vaults added up (sandbox/seed.py ALLSAFE_STOCK):
# the seeded history ends here so the first real poll continues it.
DEMO_STOCK = {
    ("Takealot", Decimal("100.00")): 30,
    ("Takealot", Decimal("250.00")): 6,
    ("Checkers", Decimal("50.00")): 40,
    ("Checkers", Decimal("100.00")): 0,
    ("Netflorist", Decimal("200.00")): 3,
    ("Uber Eats", Decimal("150.00")): 12,
}


class Command(BaseCommand):
    help = "Create or refresh the demo users and campaigns (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--quiet-passwords", action="store_true", help="Do not print the demo passwords.")

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError(
                "seed_demo creates users with known passwords and is refused in production mode."
            )
        with transaction.atomic():
            campaigns = {spec["slug"]: self._campaign(spec) for spec in DEMO_CAMPAIGNS}
            for slug, templates in DEMO_TEMPLATES.items():
                for name, template_hash, layouts in templates:
                    SaleTemplate.objects.update_or_create(
                        campaign=campaigns[slug],
                        name=name,
                        defaults={
                            "template_hash": template_hash,
                            "allowed_layouts": layouts,
                            "is_active": True,
                        },
                    )
            rows = [self._user(*spec, campaigns=campaigns) for spec in DEMO_USERS]
            stock_demo_history(campaign=campaigns["demo-allsafe"], levels=DEMO_STOCK)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Sign in with:"))
        for username, password, role in rows:
            shown = "(hidden)" if options["quiet_passwords"] else password
            self.stdout.write(f"  {role:<18} {username:<15} {shown}")

    def _campaign(self, spec) -> Campaign:
        campaign, _ = Campaign.objects.get_or_create(
            slug=spec["slug"],
            defaults={"name": spec["name"], "provider": spec["provider"], "base_url": "http://localhost"},
        )
        campaign.name = spec["name"]
        campaign.provider = spec["provider"]
        campaign.base_url = settings.SANDBOX_URL + spec["path"]
        campaign.is_live = True
        campaign.api_username = spec["username"]
        campaign.api_password = spec["password"]
        campaign.api_shared_key = spec["shared_key"]
        # A demo poll every minute shows the stock chart moving within a short demo.
        campaign.poll_interval_minutes = 1 if campaign.is_allsafe else campaign.poll_interval_minutes
        campaign.save()
        return campaign

    def _user(self, username, password, role, slugs, *, campaigns):
        User = get_user_model()
        user, _ = User.objects.get_or_create(username=username)
        user.set_password(password)
        user.email = f"{username}@example.com"
        user.is_superuser = role is None
        user.is_staff = role is None or role in roles.STAFF_ROLES
        user.is_active = True
        user.save()
        if role:
            user.groups.set([Group.objects.get(name=role)])
        for slug in slugs:
            Membership.objects.get_or_create(user=user, campaign=campaigns[slug])
        return username, password, role or "Superuser"
