from django.urls import NoReverseMatch, reverse

from .navigation import ADMIN_ITEM, NAV_ITEMS
from .roles import ROLE_LABELS, ROLE_PERMISSIONS, desk_is_home


def navigation(request):
    """Navigation entries the signed-in user may use, and their role names for the header."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items = []
    current = request.path
    for item in [*NAV_ITEMS, ADMIN_ITEM]:
        if item.staff_only and not user.is_staff:
            continue
        if item.permission and not user.has_perm(item.permission):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        active = current == url if url == "/" else current.startswith(url)
        items.append({"label": item.label, "url": url, "active": active})
    roles = sorted(set(user.groups.values_list("name", flat=True)) & set(ROLE_PERMISSIONS))
    if user.is_superuser:
        roles = ["Superuser", *roles]
    return {
        "nav_items": items,
        "user_roles": [str(ROLE_LABELS.get(role, role)) for role in roles],
        # The brand link leads a cashier back to the till, everyone else to Home.
        "home_url": reverse("vouchers:desk-home") if desk_is_home(user) else reverse("vouchers:home"),
    }
