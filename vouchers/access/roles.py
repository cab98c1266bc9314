"""The three staff roles and what each may do. Groups are created by a data migration.

Roles say *what* a person may do; memberships (vouchers.Membership) say *where*.
"""

from django.utils.translation import gettext_lazy as _

CASHIER = "Cashier"
MARKETING_MANAGER = "Marketing manager"
CAMPAIGN_ADMIN = "Campaign admin"

# Group names are stored in English (data migration); this is how the pages name them.
ROLE_LABELS = {
    CASHIER: _("Cashier"),
    MARKETING_MANAGER: _("Marketing manager"),
    CAMPAIGN_ADMIN: _("Campaign admin"),
    "Superuser": _("Superuser"),
}

# "app_label.codename" of every permission each role holds. Keep in step with the data
# migration that creates the groups (migrations copy their data and never import this module).
ROLE_PERMISSIONS: dict[str, list[str]] = {
    CASHIER: [
        "vouchers.use_desk",
    ],
    MARKETING_MANAGER: [
        "vouchers.sell_vouchers",
        "vouchers.view_sales",
        "vouchers.view_full_codes",
        "vouchers.view_stock",
    ],
    CAMPAIGN_ADMIN: [
        "vouchers.view_campaign",
        "vouchers.add_campaign",
        "vouchers.change_campaign",
        "vouchers.view_membership",
        "vouchers.add_membership",
        "vouchers.change_membership",
        "vouchers.delete_membership",
        "auth.view_user",
        "vouchers.view_sales",
        "vouchers.view_stock",
        "vouchers.manage_stock",
        "vouchers.view_ledger",
        "vouchers.resolve_operations",
        "vouchers.view_audit",
        "vouchers.test_connection",
        # People of their campaigns: cashiers and marketing managers (granted by 0012_backoffice).
        "vouchers.manage_people",
        # The named LINA templates of their campaigns (sales; granted by migration 0003_selling).
        "vouchers.view_saletemplate",
        "vouchers.add_saletemplate",
        "vouchers.change_saletemplate",
        "vouchers.delete_saletemplate",
    ],
}

# Roles whose members use the Django admin (campaigns, memberships) and so need is_staff.
STAFF_ROLES = {CAMPAIGN_ADMIN}

# Declared permission of a page every signed-in user may open (still scoped to their campaigns).
SIGNED_IN: tuple[str, ...] = ()


# Pages of the other roles: someone holding one of these has a back office to land on.
BACK_OFFICE_PERMISSIONS = (
    "vouchers.sell_vouchers",
    "vouchers.view_sales",
    "vouchers.view_stock",
    "vouchers.view_ledger",
    "vouchers.change_campaign",
)


def desk_is_home(user) -> bool:
    """A cashier's place is the till: after login they land on the desk, not on Home."""
    if not getattr(user, "is_authenticated", False) or user.is_superuser:
        return False
    return user.has_perm("vouchers.use_desk") and not any(user.has_perm(p) for p in BACK_OFFICE_PERMISSIONS)
