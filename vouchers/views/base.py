"""What every portal view shares: a declared permission and campaign scoping.

Every view declares ``permission_required`` (``roles.SIGNED_IN`` for pages any signed-in user
may open); a view that forgets raises ImproperlyConfigured instead of being open to everyone.
Anonymous users are sent to the login page by LoginRequiredMiddleware; signed-in users lacking
the permission get 403.
"""

from __future__ import annotations

from django.contrib.auth.mixins import PermissionRequiredMixin
from django.utils.functional import cached_property
from django.views.generic import TemplateView
from django_filters.views import FilterView
from django_tables2.views import SingleTableMixin

from ..access.permissions import viewer_access
from ..access.scoping import campaign_or_404
from ..models import Campaign
from ..output.csv_export import table_csv_response
from ..output.tables import BoundedPaginator


class PortalPermissionMixin(PermissionRequiredMixin):
    raise_exception = True

    def has_permission(self):
        # Groups and permissions in one statement for the whole request (access/permissions.py).
        viewer_access(self.request.user)
        return super().has_permission()

    def get_permission_required(self):
        if self.permission_required is None:
            # The base class raises ImproperlyConfigured with the view's name.
            return super().get_permission_required()
        if isinstance(self.permission_required, str):
            return (self.permission_required,)
        return tuple(self.permission_required)


class ReadPageView(PortalPermissionMixin, TemplateView):
    """A page showing one selector's read for the viewer: ``context[context_name] = read(user=...)``."""

    context_name = ""
    read = None

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context[self.context_name] = type(self).read(user=self.request.user)
        return context


class CampaignScopedMixin(PortalPermissionMixin):
    """Resolves ``<slug:campaign>`` from the URL to one of the user's campaigns, else 404."""

    campaign_url_kwarg = "campaign"
    #: Restrict to one provider ("lina"/"allsafe"); other campaigns are 404 here.
    provider: str | None = None

    @cached_property
    def campaign(self) -> Campaign:
        return campaign_or_404(
            self.request.user, slug=self.kwargs[self.campaign_url_kwarg], provider=self.provider
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["campaign"] = self.campaign
        return context


class FilteredTableView(PortalPermissionMixin, SingleTableMixin, FilterView):
    """A filterable, sortable, paginated list whose ``?export=csv`` is the same list as a file."""

    paginator_class = BoundedPaginator
    # The table paginates (with a capped count); ``paginate_by`` would make the ListView
    # paginate the same queryset a second time, a second count on every page view.
    paginate_by = None
    table_pagination = {"per_page": 50}
    csv_filename = "list.csv"

    def get(self, request, *args, **kwargs):
        if request.GET.get("export") != "csv":
            return super().get(request, *args, **kwargs)
        # The page's filters apply to the file; refused filters give an empty file, not everything.
        filterset = self.filterset_class(request.GET, queryset=self.get_queryset(), request=request)
        return self.csv_response(filterset.qs if filterset.is_valid() else self.get_queryset().none())

    def csv_response(self, queryset):
        """The same table as the page, sorted as the page, as a streamed file."""
        return table_csv_response(self.request, self.csv_filename, self.table_class(queryset))
