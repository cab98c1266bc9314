"""What the cashier desk keeps beside the ledger while a redeem is open."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..security.fields import EncryptedTextField
from .ledger import ProviderOperation


class ReconcileTicket(models.Model):
    """The full code of one open redeem, encrypted, kept only until the redeem is settled.

    The ledger never stores full codes (only masked form and digest), but settling a redeem whose
    answer got lost needs a fresh ``checkcode`` of that very code, possibly from a scheduled task
    long after the request ended. The ticket is written in the claim transaction (so even a crash
    during the provider call leaves a way to reconcile) and deleted as soon as the operation
    leaves the open states. ``attempts`` counts reconcile checks that could not get an answer.
    """

    operation = models.OneToOneField(
        ProviderOperation, on_delete=models.CASCADE, related_name="reconcile_ticket"
    )
    code = EncryptedTextField(editable=False, db_column="code_ciphertext", what="code")
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("reconcile ticket")
        verbose_name_plural = _("reconcile tickets")

    def __str__(self) -> str:
        return f"Reconcile ticket for operation #{self.operation_id}"


class DeskPreference(models.Model):
    """A cashier's own desk settings, wherever they sign in (not per browser)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="desk_preference"
    )
    #: Print the slip by itself after each successful redemption.
    auto_print = models.BooleanField(_("print the slip by itself"), default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("desk preference")
        verbose_name_plural = _("desk preferences")

    def __str__(self) -> str:
        return f"desk preference of user {self.user_id}"
