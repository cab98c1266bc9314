"""The one place that limits what a person sees to the campaigns they are a member of.

Every queryset a view shows goes through :func:`campaigns_for` or :func:`scope`. Superusers
see every campaign.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from .models import Campaign


def campaigns_for(user, *, provider: str | None = None) -> QuerySet[Campaign]:
    """The campaigns ``user`` works on (all of them for a superuser), optionally of one provider."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Campaign.objects.none()
    qs = Campaign.objects.all()
    if not user.is_superuser:
        qs = qs.filter(memberships__user=user)
    if provider:
        qs = qs.filter(provider=provider)
    return qs.order_by("name")


def scope(qs: QuerySet, user, *, field: str = "campaign") -> QuerySet:
    """Limit any queryset with a campaign relation (``field``) to ``user``'s campaigns."""
    if getattr(user, "is_superuser", False) and user.is_active:
        return qs
    return qs.filter(**{f"{field}__in": campaigns_for(user).values("pk")})


def campaign_or_404(user, *, slug: str, provider: str | None = None) -> Campaign:
    """The campaign with ``slug`` if ``user`` works on it; 404 otherwise (its existence is not revealed)."""
    try:
        return campaigns_for(user, provider=provider).get(slug=slug)
    except Campaign.DoesNotExist:
        raise Http404("No such campaign.") from None
