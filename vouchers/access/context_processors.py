from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject

from .navigation import ADMIN_ITEM, NAV_ITEMS
from .permissions import viewer_access
from .roles import BACK_OFFICE_PERMISSIONS, ROLE_LABELS, ROLE_PERMISSIONS


def _items(user, current: str) -> list[dict]:
    access = viewer_access(user)  # one statement for the whole page, shared with the view's check
    items = []
    for item in [*NAV_ITEMS, ADMIN_ITEM]:
        if item.staff_only and not user.is_staff:
            continue
        if not access.has(item.permission):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        active = current == url if url == "/" else current.startswith(url)
        items.append({"label": item.label, "url": url, "active": active})
    return items


def _roles(user) -> list[str]:
    access = viewer_access(user)
    roles = sorted(access.groups & set(ROLE_PERMISSIONS))
    if user.is_superuser:
        roles = ["Superuser", *roles]
    return [str(ROLE_LABELS.get(role, role)) for role in roles]


def _home_url(user) -> str:
    # roles.desk_is_home, from the permissions already read (no has_perm round per permission).
    access = viewer_access(user)
    desk_home = (
        not user.is_superuser
        and access.has("vouchers.use_desk")
        and not any(access.has(p) for p in BACK_OFFICE_PERMISSIONS)
    )
    return reverse("vouchers:desk-home") if desk_home else reverse("vouchers:home")


def navigation(request):
    """Navigation entries the signed-in user may use, and their role names for the header.

    Lazy: a template that shows none of them (the desk's token card fragment) reads nothing.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    current = request.path
    return {
        "nav_items": SimpleLazyObject(lambda: _items(user, current)),
        "user_roles": SimpleLazyObject(lambda: _roles(user)),
        # The brand link leads a cashier back to the till, everyone else to Home.
        "home_url": SimpleLazyObject(lambda: _home_url(user)),
    }
