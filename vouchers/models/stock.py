"""Stock monitoring of Allsafe campaigns: poll state, snapshots, thresholds and alerts."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from .. import staff_text
from ..staff_text import stored_datetime, stored_display, stored_money, stored_sentence
from ..values.formatting import format_money, translate_stored
from .campaigns import Campaign
from .ledger import ProviderOperation


def stock_item_key(vendor: str, value: Decimal | None) -> str:
    """A stable text key for one voucher type; ``""`` stands for the campaign as a whole.

    Alerts use it instead of (vendor, value) columns because a NULL in a unique constraint never
    collides with another NULL: campaign-wide alerts could then be opened twice.
    """
    if value is None:
        return f"{vendor}|*" if vendor else ""
    return f"{vendor}|{Decimal(value).normalize():f}"


class StockMonitor(models.Model):
    """Polling state of one campaign: when it is next due, when a poll last succeeded, what went wrong.

    ``next_poll_at`` is advanced by the dispatcher with a conditional update, so two overlapping
    dispatcher runs never both enqueue the same campaign's poll for one interval.
    """

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="stock_monitor")
    next_poll_at = models.DateTimeField(_("next poll"), null=True, blank=True, db_index=True)
    first_poll_at = models.DateTimeField(_("first poll"), null=True, blank=True)
    last_poll_at = models.DateTimeField(_("last poll"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("last successful poll"), null=True, blank=True)
    last_error_code = models.CharField(_("last error"), max_length=64, blank=True)
    last_error_message = models.TextField(_("last error message"), blank=True)
    #: The same error as a code with parameters (``staff_text.stored``) when it carries the
    #: provider's own words: shown in the reader's language with those words labelled.
    last_error_stored = models.JSONField(_("last error (stored)"), default=dict, blank=True)
    last_what_to_check = models.JSONField(default=list, blank=True)
    consecutive_failures = models.PositiveIntegerField(_("failed polls in a row"), default=0)

    class Meta:
        verbose_name = _("stock monitor")
        verbose_name_plural = _("stock monitors")

    def __str__(self) -> str:
        return f"Stock monitor of {self.campaign}"

    @property
    def display_last_error(self) -> str:
        """The last error in the reader's language; rows written before it was stored: as stored."""
        return stored_display(self.last_error_stored or self.last_error_message)


class StockSnapshot(models.Model):
    """The stock of one campaign as one successful poll saw it. Deleted after STOCK_HISTORY_DAYS."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="stock_snapshots")
    taken_at = models.DateTimeField(_("taken"), db_index=True)
    operation = models.ForeignKey(
        ProviderOperation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-taken_at", "-id"]
        verbose_name = _("stock snapshot")
        verbose_name_plural = _("stock snapshots")
        indexes = [models.Index(fields=["campaign", "-taken_at"], name="stock_snap_campaign_taken")]

    def __str__(self) -> str:
        return f"{self.campaign} @ {self.taken_at:%Y-%m-%d %H:%M}"


class StockLevel(models.Model):
    """How many vouchers of one vendor and denomination remained in one snapshot."""

    snapshot = models.ForeignKey(StockSnapshot, on_delete=models.CASCADE, related_name="levels")
    vendor = models.CharField(_("vendor"), max_length=120)
    value = models.DecimalField(_("value"), max_digits=12, decimal_places=2)
    remaining = models.PositiveIntegerField(_("remaining"))

    class Meta:
        ordering = ["vendor", "value"]
        verbose_name = _("stock level")
        verbose_name_plural = _("stock levels")
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "vendor", "value"], name="stock_level_unique_item")
        ]

    def __str__(self) -> str:
        return f"{self.vendor} {self.value}: {self.remaining}"

    @property
    def item_key(self) -> str:
        return stock_item_key(self.vendor, self.value)


class StockThreshold(models.Model):
    """A low-stock threshold overriding the campaign's default for one vendor (all its values, when
    ``value`` is empty) or one vendor and denomination. The most specific rule wins."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="stock_thresholds")
    vendor = models.CharField(_("vendor"), max_length=120)
    value = models.DecimalField(
        _("value"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Leave empty to apply to every value of the vendor."),
    )
    threshold = models.PositiveIntegerField(_("threshold"))

    class Meta:
        ordering = ["vendor", "value"]
        verbose_name = _("stock threshold")
        verbose_name_plural = _("stock thresholds")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "vendor", "value"],
                condition=models.Q(value__isnull=False),
                name="stock_threshold_unique_item",
            ),
            models.UniqueConstraint(
                fields=["campaign", "vendor"],
                condition=models.Q(value__isnull=True),
                name="stock_threshold_unique_vendor",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.vendor} {self.value or '*'} < {self.threshold}"


class AlertKind(models.TextChoices):
    LOW_STOCK = "low_stock", _("low stock")
    OUT_OF_STOCK = "out_of_stock", _("out of stock")
    MISCONFIGURED = "misconfigured", _("credentials or vault problem")
    STALE = "stale", _("stale data")


#: The alerts about one item's stock, in the order they supersede each other: an item has at most
#: one of them open (out of stock at 0, low stock from 1 to below its threshold).
ITEM_ALERT_KINDS = (AlertKind.OUT_OF_STOCK, AlertKind.LOW_STOCK)


def wanted_item_alert(remaining: int, threshold: int) -> str | None:
    """The one item alert that should be open at ``remaining`` vouchers, or None."""
    if remaining == 0:
        return AlertKind.OUT_OF_STOCK
    if remaining < threshold:
        return AlertKind.LOW_STOCK
    return None


OUT_OF_STOCK_TEXT = _("No %(vendor)s %(value)s vouchers are left.")
LOW_STOCK_TEXT = _("Only %(remaining)d %(vendor)s %(value)s vouchers are left (threshold %(threshold)d).")


def _item_sentence(kind: str, remaining: int | None, threshold: int | None):
    if kind == AlertKind.OUT_OF_STOCK or remaining is None or threshold is None:
        return OUT_OF_STOCK_TEXT
    return LOW_STOCK_TEXT


def stock_item_message(*, kind: str, vendor: str, value, remaining: int | None, threshold: int | None) -> str:
    """The sentence of a low-stock or out-of-stock alert, in the active language."""
    return str(_item_sentence(kind, remaining, threshold)) % {
        "remaining": remaining,
        "vendor": vendor,
        "value": value,
        "threshold": threshold,
    }


def stock_item_stored(
    *, kind: str, vendor: str, value, currency: str, remaining: int | None, threshold: int | None
) -> dict:
    """The same sentence as a stored message (audit trail): rendered in the reader's language."""
    sentence = _item_sentence(kind, remaining, threshold)
    params = {"vendor": vendor, "value": stored_money(value, currency)}
    if sentence is LOW_STOCK_TEXT:
        params.update(remaining=remaining, threshold=threshold)
    return stored_sentence(sentence, **params)


def stale_alert_stored(monitor: StockMonitor) -> dict:
    """The sentence of a stale-data alert as a stored message, from the monitor's figures: when a
    poll last succeeded (written in the reader's format) and the last error (the provider's own
    words labelled), so it is shown in the reader's language."""
    if monitor.last_success_at:
        stale = stored_sentence(staff_text.STALE_SINCE, when=stored_datetime(monitor.last_success_at))
    else:
        stale = stored_sentence(staff_text.STALE_NEVER)
    error = monitor.last_error_stored or (
        stored_sentence(monitor.last_error_message) if monitor.last_error_message else None
    )
    return stored_sentence(staff_text.STALE_LAST_ERROR, stale=stale, error=error) if error else stale


class AlertState(models.TextChoices):
    OPEN = "open", _("open")
    RESOLVED = "resolved", _("resolved")


class StockAlert(models.Model):
    """One alert episode: opened once, resolved once. A new episode is a new row.

    The partial unique constraint allows one *open* alert per campaign, kind and item: opening is
    an INSERT that loses with IntegrityError when another worker opened it first, so an alert
    (and its e-mail, claimed via ``emailed_at``) can never be duplicated.
    """

    Kind = AlertKind
    State = AlertState

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="stock_alerts")
    kind = models.CharField(_("kind"), max_length=16, choices=AlertKind.choices)
    state = models.CharField(_("state"), max_length=16, choices=AlertState.choices, default=AlertState.OPEN)
    item_key = models.CharField(max_length=160, blank=True, editable=False)
    vendor = models.CharField(_("vendor"), max_length=120, blank=True)
    value = models.DecimalField(_("value"), max_digits=12, decimal_places=2, null=True, blank=True)
    #: Both kept current while the alert is open (the poll, a threshold change): the text is
    #: rendered from them. A resolved alert keeps the figures it last had.
    remaining = models.IntegerField(_("remaining"), null=True, blank=True)
    threshold = models.PositiveIntegerField(_("threshold"), null=True, blank=True)
    message = models.TextField(_("message"), blank=True)
    #: The message as a code with parameters (``staff_text.stored``) for kinds whose text is not
    #: rebuilt from the figures above (stale data); ``message`` keeps the English text for CSV,
    #: the admin and alerts written before it existed.
    message_stored = models.JSONField(_("message (stored)"), default=dict, blank=True)
    what_to_check = models.JSONField(_("what to check"), default=list, blank=True)
    opened_at = models.DateTimeField(_("opened"), db_index=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolution = models.TextField(_("resolution"), blank=True)
    #: Why it was resolved as a code with parameters (figures included), rendered for the reader;
    #: ``resolution`` keeps the English text for CSV, the admin and rows written before.
    resolution_message = models.JSONField(_("resolution message"), default=dict, blank=True)
    emailed_at = models.DateTimeField(_("e-mailed"), null=True, blank=True)
    email_recipients = models.PositiveIntegerField(_("e-mail recipients"), default=0)
    email_attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-opened_at", "-id"]
        verbose_name = _("stock alert")
        verbose_name_plural = _("stock alerts")
        indexes = [models.Index(fields=["campaign", "state", "kind"], name="stock_alert_campaign_state")]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "kind", "item_key"],
                condition=models.Q(state=AlertState.OPEN),
                name="stock_alert_one_open_per_item",
            ),
        ]

    def __str__(self) -> str:
        item = f" {self.vendor} {self.value}" if self.vendor else ""
        return f"{self.get_kind_display()}{item} ({self.get_state_display()})"

    @property
    def is_open(self) -> bool:
        return self.state == AlertState.OPEN

    @property
    def display_message(self) -> str:
        """The alert's text in the reader's language.

        Stock alerts are written by the polling job in the default language; the low/out-of-stock
        sentence is rebuilt from the alert's own figures, which every poll (remaining, threshold)
        and every threshold change keep current while the alert is open; other kinds show the
        stored text translated when it is a catalogue sentence. An open stale-data alert is
        rendered from its monitor's current figures (the last error may have changed since it
        opened); a resolved one from what it stored.
        """
        if (
            self.kind in (AlertKind.LOW_STOCK, AlertKind.OUT_OF_STOCK)
            and self.vendor
            and self.value is not None
        ):
            return stock_item_message(
                kind=self.kind,
                vendor=self.vendor,
                value=format_money(self.value, self.campaign.currency),
                remaining=self.remaining,
                threshold=self.threshold,
            )
        if self.kind == AlertKind.STALE and self.is_open:
            monitor = StockMonitor.objects.filter(campaign_id=self.campaign_id).first()
            if monitor is not None:
                return stored_display(stale_alert_stored(monitor))
        if self.message_stored:
            return stored_display(self.message_stored)
        return translate_stored(self.message)

    @property
    def display_resolution(self) -> str:
        return stored_display(self.resolution_message or self.resolution)

    @property
    def display_what_to_check(self) -> list[str]:
        return [translate_stored(item) for item in self.what_to_check or []]

    @property
    def severity(self) -> str:
        """CSS suffix: out of stock and broken credentials are worse than low or stale stock."""
        return "bad" if self.kind in (AlertKind.OUT_OF_STOCK, AlertKind.MISCONFIGURED) else "warn"
