"""Re-encrypting everything stored with vouchers.security.crypto under the newest key.

Campaign credentials (audited per campaign), sale codes and the short-lived reconcile tickets.
Each row is re-encrypted in its own short transaction under a row lock, so concurrent writes
are never lost and a long rotation never blocks the tills.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from ..models import ReconcileTicket, Sale
from ..security import crypto
from .campaigns import credentials_rotate


@dataclass(frozen=True)
class RotationReport:
    campaigns: int
    sale_codes: int
    sale_details: int
    reconcile_tickets: int


def _rotate_column(model, field: str, what: str) -> int:
    rotated = 0
    pks = model.objects.exclude(**{field: ""}).order_by("pk").values_list("pk", flat=True)
    for pk in pks.iterator():
        with transaction.atomic():
            row = model.objects.select_for_update().filter(pk=pk).only("pk", field).first()
            if row is None or not getattr(row, field):
                continue
            new = crypto.rotate(getattr(row, field), what=f"{what} {pk}")
            model.objects.filter(pk=pk).update(**{field: new})
            rotated += 1
    return rotated


def encryption_rotate(*, actor=None) -> RotationReport:
    """Re-encrypt every encrypted value with the newest key; raises CredentialDecryptionError
    (naming the row) when a value no configured key can decrypt is found."""
    return RotationReport(
        campaigns=credentials_rotate(actor=actor),
        sale_codes=_rotate_column(Sale, "full_code_ciphertext", "code of sale"),
        sale_details=_rotate_column(Sale, "voucher_fields_ciphertext", "voucher details of sale")
        + _rotate_column(Sale, "qrcode_png_ciphertext", "QR image of sale"),
        reconcile_tickets=_rotate_column(ReconcileTicket, "code_ciphertext", "reconcile ticket"),
    )
