"""The one place that limits what a person sees to the campaigns they are a member of.

Every queryset a view shows goes through :func:`campaigns_for` or :func:`scope`; people are
limited by :func:`users_for`. Superusers see every campaign and everyone.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from ..models import Campaign, Membership


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


def users_for(user, qs: QuerySet | None = None) -> QuerySet:
    """The people ``user`` may see: members of ``user``'s campaigns and ``user`` themselves.

    Superusers see everyone. Filtered by a subquery rather than a join, so no DISTINCT is needed
    and a person on several campaigns is listed (and counted) once.
    """
    from django.contrib.auth import get_user_model

    if qs is None:
        qs = get_user_model()._default_manager.all()
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return qs.none()
    if user.is_superuser:
        return qs
    members = Membership.objects.filter(campaign__in=campaigns_for(user).values("pk")).values("user_id")
    return qs.filter(Q(pk__in=members) | Q(pk=user.pk))
