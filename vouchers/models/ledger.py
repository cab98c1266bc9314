"""The ledger: one row per provider operation attempt, written before the call is made."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..staff_text import stored_display
from .campaigns import Campaign


class OperationKind(models.TextChoices):
    CHECK = "check", _("check")
    REDEEM = "redeem", _("redeem")
    PURCHASE = "purchase", _("sell gift token")
    ALLOCATE = "allocate", _("allocate voucher")
    POLL = "poll", _("stock poll")
    TEST = "test", _("connection test")


class OperationState(models.TextChoices):
    PENDING = "pending", _("pending")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    UNKNOWN = "unknown", _("outcome unknown")
    NEEDS_REVIEW = "needs_review", _("needs review")


MONEY_MOVING = (OperationKind.REDEEM, OperationKind.PURCHASE, OperationKind.ALLOCATE)
OPEN_STATES = (OperationState.PENDING, OperationState.UNKNOWN, OperationState.NEEDS_REVIEW)


class ProviderOperation(models.Model):
    """One attempt at a provider call: who, when, campaign, what was asked, what came back.

    Money-moving operations follow claim → call → record (ARCHITECTURE.md): the row is inserted
    as ``pending`` with the form's one-time ``request_token`` (unique) before the call, and
    finished afterwards. An answer that got lost leaves ``unknown`` (to be reconciled) or
    ``needs_review`` (a person decides); ``resolved_*`` keep how that was settled.

    Full voucher codes are never stored here: ``code_masked`` is for people, ``code_digest``
    (keyed hash) finds operations on the same code.
    """

    Kind = OperationKind
    State = OperationState

    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, related_name="operations", verbose_name=_("campaign")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="operations",
        verbose_name=_("user"),
    )
    kind = models.CharField(_("operation"), max_length=16, choices=OperationKind.choices)
    state = models.CharField(
        _("state"), max_length=16, choices=OperationState.choices, default=OperationState.PENDING
    )
    request_token = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)

    code_masked = models.CharField(_("code"), max_length=32, blank=True)
    code_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2, null=True, blank=True)
    balance_before = models.DecimalField(
        _("balance before"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    balance_after = models.DecimalField(
        _("balance after"), max_digits=12, decimal_places=2, null=True, blank=True
    )

    request_data = models.JSONField(_("request"), default=dict, blank=True)
    response_data = models.JSONField(_("response"), default=dict, blank=True)
    error_code = models.CharField(_("error"), max_length=64, blank=True)
    error_message = models.TextField(_("message"), blank=True)
    #: What staff were told when the outcome was recorded: {"message", "checks", "status"}.
    #: Pages show this as it is; they never rebuild an error from the stored class name.
    staff_text = models.JSONField(_("what staff were told"), default=dict, blank=True, editable=False)

    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)

    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    resolution_note = models.TextField(_("resolution note"), blank=True)  # English, or as a person typed it
    #: The note of a settlement the portal made itself (reconcile), as a code and parameters
    #: (``staff_text.stored_sentence``): shown, and printed on the slip, in the reader's language.
    resolution_message = models.JSONField(_("resolution message"), default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("provider operation")
        verbose_name_plural = _("provider operations")
        indexes = [
            models.Index(fields=["campaign", "-created_at"], name="op_campaign_created"),
            models.Index(fields=["user", "-created_at"], name="op_user_created"),
            models.Index(fields=["state", "kind"], name="op_state_kind"),
            # The ledger list at a million rows (docs/performance.md): "state = failed" newest
            # first, and the sort by duration, each walk an index instead of sorting every row.
            models.Index(fields=["state", "-created_at"], name="op_state_created"),
            models.Index(fields=["duration_ms"], name="op_duration"),
            # The capped count of a state filter within the viewer's campaigns: an index-only
            # scan (~5 ms) instead of fetching every matching row's heap page (~45 ms at 1M).
            models.Index(fields=["state", "campaign"], name="op_state_campaign"),
        ]
        constraints = [
            # At most one open redeem per code and campaign: a second till is told the code is
            # being redeemed elsewhere, even if two requests pass the lock check at once.
            models.UniqueConstraint(
                fields=["campaign", "code_digest"],
                condition=models.Q(kind=OperationKind.REDEEM, state__in=list(OPEN_STATES)),
                name="op_one_open_redeem_per_code",
            ),
            models.CheckConstraint(
                condition=models.Q(amount__isnull=True) | models.Q(amount__gte=0),
                name="op_amount_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.get_state_display()})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def was_unknown(self) -> bool:
        return self.resolved_at is not None

    @property
    def display_resolution_note(self) -> str:
        """The settlement note in the reader's language; a note a person typed, as typed."""
        return stored_display(self.resolution_message or self.resolution_note)
