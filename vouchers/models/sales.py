"""Selling: named LINA templates, sales (gift tokens and digital vouchers) and bulk-sale jobs.

A sale's state is never stored here: it is the state of its ProviderOperation (the ledger row
written before the provider call). When the desk's manual resolution settles an operation that
needed review, every page showing the sale follows without a second column to keep in step.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..security.fields import EncryptedJSONField, EncryptedTextField
from ..staff_text import stored_display
from .campaigns import Campaign
from .ledger import OperationState, ProviderOperation


class SaleTemplate(models.Model):
    """A LINA token template as campaign admins name it: the template hash and its layouts."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="sale_templates", verbose_name=_("campaign")
    )
    name = models.CharField(_("name"), max_length=80)
    template_hash = models.CharField(
        _("template hash"),
        max_length=120,
        help_text=_("The token template's hash from the LINA back office."),
    )
    allowed_layouts = models.JSONField(
        _("allowed layouts"),
        default=list,
        blank=True,
        help_text=_("Layout numbers LINA allows for this template, e.g. [1, 2]. Empty: no layouts."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["campaign__name", "name"]
        verbose_name = _("sale template")
        verbose_name_plural = _("sale templates")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="saletemplate_unique_name_per_campaign")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def layouts(self) -> list[int]:
        return sorted({int(x) for x in self.allowed_layouts or []})


class SaleKind(models.TextChoices):
    GIFT_TOKEN = "gift_token", _("gift token (LINA)")
    DIGITAL_VOUCHER = "digital_voucher", _("digital voucher (Allsafe)")


class SaleQuerySet(models.QuerySet):
    def with_related(self):
        """Everything a list or detail page shows, in one query."""
        return self.select_related("campaign", "seller", "operation", "template", "operation__resolved_by")

    def in_state(self, state: str):
        return self.filter(operation__state=state)


class Sale(models.Model):
    """One gift token sold or one digital voucher allocated, linked to its ledger operation.

    The full code (gift token code or voucher PIN) is kept because marketing needs to hand it
    out later. Like credentials it is stored only encrypted (``vouchers.security.fields``, rotated with
    ``manage.py rotate_encryption_keys``), shown only to roles holding
    ``vouchers.view_full_codes`` and never copied into the ledger or logs (the ledger has
    ``code_masked``/``code_digest``).
    """

    Kind = SaleKind

    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, related_name="sales", verbose_name=_("campaign")
    )
    operation = models.OneToOneField(
        ProviderOperation, on_delete=models.PROTECT, related_name="sale", verbose_name=_("ledger operation")
    )
    seller = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sales",
        verbose_name=_("seller"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=SaleKind.choices)
    created_at = models.DateTimeField(_("sold at"), auto_now_add=True, db_index=True)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)

    # What was asked (gift token)
    template = models.ForeignKey(
        SaleTemplate,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sales",
        verbose_name=_("template"),
    )
    template_name = models.CharField(_("template"), max_length=80, blank=True)
    layout = models.PositiveIntegerField(_("layout"), null=True, blank=True)
    from_name = models.CharField(_("from"), max_length=100, blank=True)
    for_name = models.CharField(_("for"), max_length=100, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    # What was asked (digital voucher)
    vendor = models.CharField(_("vendor"), max_length=120, blank=True)

    # What came back
    full_code = EncryptedTextField(blank=True, editable=False, db_column="full_code_ciphertext", what="code")
    code_masked = models.CharField(_("code"), max_length=32, blank=True)
    # The QR image (base64 PNG) encodes the code and the voucher's fields (every field the provider
    # sent, PIN included) hold it: both are the code in another form, so encrypted like it.
    qrcode_png_base64 = EncryptedTextField(
        blank=True, editable=False, db_column="qrcode_png_ciphertext", what="QR image"
    )
    layout_url = models.URLField(_("layout link"), max_length=500, blank=True)
    voucher_fields = EncryptedJSONField(
        blank=True, editable=False, db_column="voucher_fields_ciphertext", what="voucher details"
    )

    objects = SaleQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("sale")
        verbose_name_plural = _("sales")
        indexes = [
            models.Index(fields=["campaign", "-created_at"], name="sale_campaign_created"),
            models.Index(fields=["seller", "-created_at"], name="sale_seller_created"),
            # The sellers of the viewer's campaigns (selectors/filters.seller_ids: a loose index scan).
            models.Index(fields=["campaign", "seller"], name="sale_campaign_seller"),
            # The sales list sorted by amount (ties by time and id, output/tables.then_newest).
            models.Index(fields=["amount", "created_at", "id"], name="sale_amount_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="sale_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def state(self) -> str:
        """The ledger operation's state: pending, succeeded, failed, unknown or needs_review."""
        return self.operation.state

    @property
    def state_label(self) -> str:
        return self.operation.get_state_display()

    @property
    def succeeded(self) -> bool:
        return self.operation.state == OperationState.SUCCEEDED

    @property
    def sold(self) -> bool:
        """Succeeded *and* a code to hand out: a sale without a code is never shown as sold."""
        return self.succeeded and bool(self.code_masked)

    @property
    def code_missing(self) -> bool:
        """Recorded as gone through without the code (settled by hand before evidence was asked)."""
        return self.succeeded and not self.code_masked

    @property
    def shown_state(self) -> str:
        """The state pages show: the operation's, or ``code_missing`` instead of "succeeded"."""
        return "code_missing" if self.code_missing else self.operation.state

    @property
    def shown_state_label(self) -> str:
        return (
            str(_("went through, code missing")) if self.code_missing else self.operation.get_state_display()
        )

    @property
    def is_gift_token(self) -> bool:
        return self.kind == SaleKind.GIFT_TOKEN


class BulkSaleState(models.TextChoices):
    """The job's own progress (not a provider outcome: those live on each row's operation)."""

    DRAFT = "draft", _("checked, not started")
    QUEUED = "queued", _("queued")
    RUNNING = "running", _("selling")
    FINISHED = "finished", _("finished")
    CANCELLED = "cancelled", _("cancelled")


class BulkSale(models.Model):
    """An uploaded CSV of gift tokens to sell, worked through row by row by a Celery job.

    ``lease_owner``/``lease_until`` make sure one job run at a time works on the batch: a
    redelivered task message or a resume after a crash waits until the lease ran out.
    """

    State = BulkSaleState

    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, related_name="bulk_sales", verbose_name=_("campaign")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("uploaded"), auto_now_add=True)
    filename = models.CharField(_("file"), max_length=200, blank=True)
    state = models.CharField(
        _("state"), max_length=16, choices=BulkSaleState.choices, default=BulkSaleState.DRAFT
    )
    cancel_requested = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(_("note"), blank=True)  # why the job stopped early, if it did (English)
    #: The same note as a stored sentence (``staff_text.stored_sentence``), shown in the reader's
    #: language; empty on batches that stopped before it existed (``note`` is shown then).
    note_message = models.JSONField(_("note (stored)"), default=dict, blank=True)
    # How many rows sold before (from an earlier file, see BulkSaleRow.content_digest) the person
    # who started the batch confirmed selling again; more repeats than that refuse the start.
    repeats_confirmed = models.PositiveIntegerField(default=0, editable=False)
    lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("bulk sale")
        verbose_name_plural = _("bulk sales")

    def __str__(self) -> str:
        return f"{self.filename or _('bulk sale')} #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.state in (BulkSaleState.QUEUED, BulkSaleState.RUNNING)

    @property
    def display_note(self) -> str:
        """Why the job stopped early, in the reader's language (old batches: as stored)."""
        return stored_display(self.note_message or self.note)


class BulkSaleRow(models.Model):
    """One line of the uploaded file, validated at upload; sold at most once.

    ``request_token`` is fixed at upload and becomes the ledger operation's unique request
    token, so running the job again (a re-run, a redelivered message, a worker restart) finds
    the earlier operation instead of selling a second token.
    """

    bulk_sale = models.ForeignKey(BulkSale, on_delete=models.CASCADE, related_name="rows")
    line_number = models.PositiveIntegerField(_("line"))
    raw = models.JSONField(default=dict, blank=True)  # the cells as uploaded, for the result file
    valid = models.BooleanField(default=False)  # False: never sold; ``errors`` says why
    errors = models.JSONField(default=list, blank=True)  # in English, for the raw data and old rows
    #: The same messages as codes and parameters (``staff_text.stored_sentence``), shown in the
    #: reader's language; empty on rows uploaded before it existed (``errors`` is shown then).
    error_messages = models.JSONField(default=list, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    template = models.ForeignKey(
        SaleTemplate, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("template")
    )
    layout = models.PositiveIntegerField(null=True, blank=True)
    from_name = models.CharField(max_length=100, blank=True)
    for_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    request_token = models.CharField(max_length=64, unique=True, editable=False)
    # What the row would sell (campaign, amount, template, layout, names, e-mail) as a digest, to
    # find the same row sold from an earlier file; "" for invalid rows.
    content_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    sale = models.OneToOneField(
        Sale, null=True, blank=True, on_delete=models.SET_NULL, related_name="bulk_row"
    )
    message = models.TextField(blank=True)  # what happened when the job reached this row (English)
    #: The same as a code with parameters (``staff_text.stored_sentence`` / ``told_stored``), shown
    #: in the reader's language; empty on rows the job reached before it existed (``message`` is
    #: shown then).
    message_stored = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["bulk_sale", "line_number"]
        constraints = [
            models.UniqueConstraint(fields=["bulk_sale", "line_number"], name="bulkrow_unique_line"),
        ]

    def __str__(self) -> str:
        return f"line {self.line_number}"

    @property
    def display_errors(self) -> list[str]:
        """Why the row is invalid, in the reader's language."""
        return [stored_display(e) for e in (self.error_messages or self.errors or [])]

    @property
    def display_message(self) -> str:
        """What happened when the job reached this row, in the reader's language (the provider's
        own words labelled as such)."""
        return stored_display(self.message_stored or self.message)
