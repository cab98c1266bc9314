"""Re-encrypting every encrypted column under the newest key in FIELD_ENCRYPTION_KEYS.

The columns are found by type (every :class:`~vouchers.security.fields.EncryptedTextField` of
every model), so a new encrypted column is rotated without touching this module. Each row is
re-encrypted in its own short transaction under a row lock, so concurrent writes are never lost
and a long rotation never blocks the tills. Campaign credentials are audited per campaign.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.apps import apps
from django.db import transaction
from django.db.models import Q

from .. import staff_text
from ..models import Campaign
from ..security import crypto
from ..security.fields import Ciphertext, EncryptedTextField
from ..staff_text import stored_sentence
from .audit import audit_record


@dataclass(frozen=True)
class RotationReport:
    # Rows changed per model label ("vouchers.Campaign") and values per field ("vouchers.Sale.full_code").
    rows: Counter = field(default_factory=Counter)
    values: Counter = field(default_factory=Counter)

    def count(self, model, name: str) -> int:
        return self.values[f"{model._meta.label}.{name}"]


def encrypted_fields() -> list[tuple[type, list[EncryptedTextField]]]:
    """Every concrete model with encrypted columns, and those columns."""
    found = []
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if fields:
            found.append((model, fields))
    return found


def _rotate_row(model, fields, pk, report: RotationReport, actor) -> None:
    with transaction.atomic():
        names = [f.name for f in fields]
        row = model.objects.select_for_update().filter(pk=pk).only("pk", *names).first()
        if row is None:
            return
        changed = {}
        for f in fields:
            stored = f.stored(row)
            if stored:
                changed[f.name] = Ciphertext(crypto.rotate(stored, what=f.describe(row)))
                report.values[f"{model._meta.label}.{f.name}"] += 1
        if not changed:
            return
        model.objects.filter(pk=pk).update(**changed)
        report.rows[model._meta.label] += 1
        if model is Campaign:
            audit_record(
                actor=actor,
                action="campaign.credentials_reencrypted",
                campaign=row,
                obj=row,
                summary=f"Credentials of {row.name} re-encrypted with the newest key",
                message=stored_sentence(staff_text.AUDIT_CREDENTIALS_REENCRYPTED, campaign=row.name),
            )


def encryption_rotate(*, actor=None) -> RotationReport:
    """Re-encrypt every encrypted value with the newest key; raises CredentialDecryptionError
    (naming the row) when a value no configured key can decrypt is found."""
    report = RotationReport()
    for model, fields in encrypted_fields():
        anything = Q()
        for f in fields:
            anything |= ~Q(**{f.name: ""})
        for pk in model.objects.filter(anything).order_by("pk").values_list("pk", flat=True).iterator():
            _rotate_row(model, fields, pk, report, actor)
    return report
