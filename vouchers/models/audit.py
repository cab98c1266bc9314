"""The audit trail: append-only records of state changes and admin actions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from ..staff_text import render_stored


class AppendOnlyError(Exception):
    """Audit events are never changed or deleted."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit events cannot be updated.")

    def delete(self):
        raise AppendOnlyError("Audit events cannot be deleted.")


class AuditEvent(models.Model):
    """Who did what, when, to which campaign and object. Values of secrets are never recorded.

    Its foreign keys PROTECT: deleting a person or a campaign must never make their history
    vanish (CASCADE) or lose who did it (SET_NULL). Such people and campaigns are deactivated.
    """

    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("actor"),
    )
    actor_name = models.CharField(_("who"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=64, db_index=True)
    campaign = models.ForeignKey(
        "vouchers.Campaign",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
        verbose_name=_("campaign"),
    )
    object_type = models.CharField(_("object type"), max_length=64, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    #: English text, for search and for rows written before ``message`` existed.
    summary = models.TextField(_("summary"))
    #: The summary as a code and parameters (``staff_text.stored``), rendered when read.
    message = models.JSONField(_("message"), default=dict, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [
            models.Index(fields=["campaign", "-created_at"], name="audit_campaign_created"),
            # The audit list's "Who" filter is iexact, UPPER(actor_name) = UPPER(%s): without an
            # index on that expression it scanned every event (docs/performance.md).
            models.Index(Upper("actor_name"), name="audit_actor_upper"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("Audit events cannot be changed once written.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events cannot be deleted.")

    @property
    def display_summary(self) -> str:
        """The summary in the reader's language (old rows without a code: as stored)."""
        return render_stored(self.message, self.summary)
