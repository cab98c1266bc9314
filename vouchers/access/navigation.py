"""The main navigation: each entry names the permission that shows it.

A page's link appears only to people whose role holds the permission its view declares.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    permission: str | None  # None: every signed-in user
    staff_only: bool = False


NAV_ITEMS: list[NavItem] = [
    NavItem(_("Home"), "vouchers:home", None),
    NavItem(_("Audit"), "vouchers:audit-list", "vouchers.view_audit"),
    NavItem(_("Provider health"), "vouchers:provider-health", "vouchers.view_ledger"),
    NavItem(_("Ledger"), "vouchers:ledger-list", "vouchers.view_ledger"),
    NavItem(_("People"), "vouchers:people-list", "vouchers.manage_people"),
    NavItem(_("Stock"), "vouchers:stock-dashboard", "vouchers.view_stock"),
    NavItem(_("Desk"), "vouchers:desk-home", "vouchers.use_desk"),
    NavItem(_("Today's redemptions"), "vouchers:desk-today", "vouchers.use_desk"),
    NavItem(_("Unresolved operations"), "vouchers:operation-review", "vouchers.resolve_operations"),
    NavItem(_("Day close"), "vouchers:day-close", "vouchers.view_ledger"),
    NavItem(_("Sell"), "vouchers:sale-start", "vouchers.sell_vouchers"),
    NavItem(_("Sales"), "vouchers:sale-list", "vouchers.view_sales"),
]

# The Django admin (campaigns, credentials, memberships) for roles that manage campaigns.
ADMIN_ITEM = NavItem(_("Administration"), "admin:index", "vouchers.change_campaign", staff_only=True)
