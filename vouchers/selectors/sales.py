"""Read queries of the sales pages, always scoped to the person's campaigns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from .. import staff_text
from ..access.scoping import scope
from ..models import BulkSale, BulkSaleRow, Campaign, Sale, StockSnapshot
from ..models.ledger import OperationState
from ..models.sales import BulkSaleState
from ..output.bulk_csv import TemplateExample
from ..security.crypto import CredentialDecryptionError
from ..values.codes import code_digest, normalize_code


def sales_for(user) -> QuerySet[Sale]:
    """Sales of the user's campaigns with everything a list row shows (constant query count)."""
    return scope(Sale.objects.with_related(), user)


#: What a sales list row and its CSV never read: the encrypted code, QR image (kilobytes a row)
#: and voucher details, and the ledger's stored request and answer.
LIST_DEFERRED = (
    "full_code",
    "qrcode_png_base64",
    "voucher_fields",
    "operation__request_data",
    "operation__response_data",
    "operation__staff_text",
    "operation__resolution_message",
)


def sales_list_for(user) -> QuerySet[Sale]:
    """Sales of the user's campaigns for the list and its CSV: the columns a row shows only."""
    return scope(Sale.objects.select_related("campaign", "seller", "operation").defer(*LIST_DEFERRED), user)


def sale_for(user, pk: int) -> Sale:
    """One sale of the user's campaigns; Sale.DoesNotExist otherwise (the view turns it into 404)."""
    return sales_for(user).get(pk=pk)


def sale_with_code(user, code: str) -> Sale | None:
    """The newest sale of the user's campaigns whose code is ``code``, found by the ledger's keyed
    digest (the code itself is stored only encrypted, so it cannot be compared in a query)."""
    code = normalize_code(code)
    if not code:
        return None
    return (
        sales_for(user)
        .filter(operation__code_digest=code_digest(code))
        .order_by("-created_at", "-pk")
        .first()
    )


def sale_code_digest(user, sale_id: int) -> str:
    """The keyed digest of a sale's code if the sale is one of the user's campaigns, else ""."""
    return sales_for(user).filter(pk=sale_id).values_list("operation__code_digest", flat=True).first() or ""


def sale_email_blocker(sale: Sale) -> str:
    """Why this sale cannot be e-mailed to the customer again ("" when it can)."""
    if not sale.is_gift_token:
        return str(staff_text.SALE_EMAIL_NOT_A_TOKEN)
    if not sale.succeeded:
        return str(staff_text.SALE_EMAIL_NOT_SOLD)
    if not sale.email:
        return str(staff_text.SALE_EMAIL_NO_ADDRESS)
    try:
        readable = bool(sale.full_code)
    except CredentialDecryptionError:
        readable = False
    return "" if readable else str(staff_text.SALE_EMAIL_NO_CODE)


def bulk_sales_for(user) -> QuerySet[BulkSale]:
    return scope(BulkSale.objects.select_related("campaign", "created_by"), user)


def bulk_rows(bulk_sale: BulkSale):
    """Rows with their sale and operation, in file order, for the preview and the result file."""
    return bulk_sale.rows.select_related("sale", "sale__operation", "template").order_by("line_number")


def bulk_template_examples(campaign: Campaign) -> tuple[TemplateExample, ...]:
    """The campaign's active templates, for its downloadable example file."""
    templates = campaign.sale_templates.filter(is_active=True).order_by("name")
    return tuple(TemplateExample(t.name, tuple(t.layouts)) for t in templates)


def bulk_example_amount(campaign: Campaign) -> Decimal:
    """An amount the campaign accepts: 25 when it is inside the campaign's range, else its minimum."""
    amount = Decimal("25.00")
    return (
        amount if campaign.sale_min_amount <= amount <= campaign.sale_max_amount else campaign.sale_min_amount
    )


def bulk_rows_from(bulk_sale: BulkSale, first_line: int, limit: int = 200):
    """Rows from ``first_line`` on that the job has reached (sold or given a message): what the
    batch page's poll updates. The job works in file order, so this window stays small."""
    return (
        bulk_rows(bulk_sale)
        .filter(line_number__gte=first_line)
        .filter(Q(sale__isnull=False) | ~Q(message=""))[:limit]
    )


@dataclass(frozen=True)
class Repeat:
    """An earlier row of the same campaign with the same content, already sold (or maybe sold)."""

    bulk_sale_id: int
    line_number: int
    sold_at: datetime


def bulk_repeat_window_days() -> int:
    return int(settings.SALES_BULK_REPEAT_WINDOW_DAYS)


def bulk_repeats(bulk_sale: BulkSale, now: datetime | None = None) -> dict[int, Repeat]:
    """Line number → the row of an earlier file it repeats: same campaign and content, sold within
    the window (a failed sale sold nothing and does not count; an open one may have)."""
    digests = set(
        bulk_sale.rows.filter(valid=True, sale__isnull=True)
        .exclude(content_digest="")
        .values_list("content_digest", flat=True)
    )
    if not digests:
        return {}
    since = (now or timezone.now()) - timedelta(days=bulk_repeat_window_days())
    earlier = (
        BulkSaleRow.objects.filter(
            bulk_sale__campaign_id=bulk_sale.campaign_id,
            content_digest__in=digests,
            sale__created_at__gte=since,
        )
        .exclude(bulk_sale_id=bulk_sale.pk)
        .exclude(sale__operation__state=OperationState.FAILED)
        .order_by("sale__created_at")
        .values_list("content_digest", "bulk_sale_id", "line_number", "sale__created_at")
    )
    found: dict[str, Repeat] = {}
    for digest, bulk_id, line, sold_at in earlier:
        found[digest] = Repeat(bulk_id, line, sold_at)  # the latest sale of that content wins
    lines = bulk_sale.rows.filter(content_digest__in=list(found), valid=True, sale__isnull=True)
    return {line: found[digest] for line, digest in lines.values_list("line_number", "content_digest")}


@dataclass(frozen=True)
class AvailableItem:
    vendor: str
    value: Decimal
    remaining: int


@dataclass(frozen=True)
class AvailabilitySnapshot:
    items: tuple[AvailableItem, ...]
    fetched_at: datetime | None


def availability_latest(*, campaign: Campaign) -> AvailabilitySnapshot:
    """The stock of the campaign's newest snapshot (stock polls and refreshes both write them)."""
    snapshot = (
        StockSnapshot.objects.filter(campaign=campaign)
        .order_by("-taken_at", "-id")
        .prefetch_related("levels")
        .first()
    )
    if snapshot is None:
        return AvailabilitySnapshot((), None)
    items = tuple(
        AvailableItem(level.vendor, level.value, level.remaining)
        for level in sorted(snapshot.levels.all(), key=lambda lv: (lv.vendor, lv.value))
    )
    return AvailabilitySnapshot(items, snapshot.taken_at)


def bulk_sale_lease_seconds() -> int:
    # Longer than one row can take (the provider's read timeout is at most 120 s).
    return int(settings.SALES_BULK_LEASE_SECONDS)


def bulk_sale_is_stalled(bulk: BulkSale, now: datetime | None = None) -> bool:
    """Queued or running, but nobody holds the lease: the worker died or the message was lost."""
    now = now or timezone.now()
    if not bulk.is_active:
        return False
    if bulk.state == BulkSaleState.QUEUED:
        if bulk.lease_until is not None:
            # The ownerless lease given with the message ran out (or was spent at once because
            # the broker was unreachable): nobody picked the message up.
            return bulk.lease_until <= now
        return bulk.created_at < now - timedelta(seconds=bulk_sale_lease_seconds())
    return bulk.lease_until is None or bulk.lease_until < now


#: The totals of :func:`bulk_sale_progress` (Decimal, the campaign's currency).
AMOUNT_KEYS = ("valid_amount", "succeeded_amount", "failed_amount", "review_amount")


def bulk_sale_progress(*, bulk_sale: BulkSale) -> dict[str, Any]:
    """Counts and totals (Decimal amounts, in the campaign's currency) for the progress bar."""
    counts = bulk_sale.rows.aggregate(
        total=Count("pk"),
        valid_rows=Count("pk", filter=Q(valid=True)),
        done=Count("pk", filter=Q(valid=True, sale__isnull=False) & ~Q(sale__operation__state="pending")),
        succeeded=Count("pk", filter=Q(sale__operation__state=OperationState.SUCCEEDED)),
        failed=Count("pk", filter=Q(sale__operation__state=OperationState.FAILED)),
        review=Count(
            "pk",
            filter=Q(sale__operation__state__in=[OperationState.NEEDS_REVIEW, OperationState.UNKNOWN]),
        ),
        valid_amount=Sum("amount", filter=Q(valid=True)),
        succeeded_amount=Sum("sale__amount", filter=Q(sale__operation__state=OperationState.SUCCEEDED)),
        failed_amount=Sum("amount", filter=Q(sale__operation__state=OperationState.FAILED)),
        review_amount=Sum(
            "amount",
            filter=Q(sale__operation__state__in=[OperationState.NEEDS_REVIEW, OperationState.UNKNOWN]),
        ),
    )
    for key in AMOUNT_KEYS:  # a sum over no rows is None
        counts[key] = counts[key] or Decimal("0")
    valid = counts.pop("valid_rows") or 0
    counts["valid"] = valid
    counts["invalid"] = (counts["total"] or 0) - valid
    counts["percent"] = round(100 * counts["done"] / valid) if valid else 100
    counts["state"] = bulk_sale.state
    counts["state_label"] = str(bulk_sale.get_state_display())
    counts["finished"] = not bulk_sale.is_active and bulk_sale.state != BulkSaleState.DRAFT
    counts["note"] = bulk_sale.display_note
    counts["stalled"] = bulk_sale_is_stalled(bulk_sale)
    # Stopped early (provider trouble) with rows left: a person may resume after fixing the cause.
    counts["resumable"] = (
        bulk_sale.state == BulkSaleState.FINISHED
        and not bulk_sale.cancel_requested
        and counts["valid"] > counts["done"]
    )
    return counts
