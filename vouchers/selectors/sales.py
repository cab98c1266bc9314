"""Read queries of the sales pages, always scoped to the person's campaigns."""

from __future__ import annotations

from django.db.models import QuerySet

from ..access.scoping import scope
from ..models import BulkSale, Sale


def sales_for(user) -> QuerySet[Sale]:
    """Sales of the user's campaigns with everything a list row shows (constant query count)."""
    return scope(Sale.objects.with_related(), user)


def sale_for(user, pk: int) -> Sale:
    """One sale of the user's campaigns; Sale.DoesNotExist otherwise (the view turns it into 404)."""
    return sales_for(user).get(pk=pk)


def bulk_sales_for(user) -> QuerySet[BulkSale]:
    return scope(BulkSale.objects.select_related("campaign", "created_by"), user)


def bulk_rows(bulk_sale: BulkSale):
    """Rows with their sale and operation, in file order, for the preview and the result file."""
    return bulk_sale.rows.select_related("sale", "sale__operation", "template").order_by("line_number")
