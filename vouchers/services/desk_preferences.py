"""A cashier's own desk settings (stored per person, so they follow them to any till)."""

from __future__ import annotations

from ..models import DeskPreference


def desk_auto_print_set(*, user, on: bool) -> DeskPreference:
    """Turn printing the slip by itself after each redemption on or off for ``user``."""
    preference, _created = DeskPreference.objects.update_or_create(user=user, defaults={"auto_print": on})
    return preference
