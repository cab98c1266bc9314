"""Re-encrypt every encrypted column with the newest key in FIELD_ENCRYPTION_KEYS.

Rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it), deploy,
run this command, then remove the old keys.
"""

from django.core.management.base import BaseCommand, CommandError

from vouchers.models import Campaign, ReconcileTicket, Sale
from vouchers.security.crypto import CredentialDecryptionError
from vouchers.services.encryption import encryption_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt credentials, sale codes, QR images, voucher details and reconcile tickets "
        "(every encrypted column) with the newest FIELD_ENCRYPTION_KEYS key."
    )

    def handle(self, *args, **options):
        try:
            report = encryption_rotate(actor=None)
        except CredentialDecryptionError as exc:
            raise CommandError(str(exc)) from exc
        details = report.count(Sale, "qrcode_png_base64") + report.count(Sale, "voucher_fields")
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted with the newest key: credentials of {report.rows[Campaign._meta.label]} "
                f"campaign(s), {report.count(Sale, 'full_code')} sale code(s), {details} sale QR image(s) "
                f"and voucher detail(s), {report.count(ReconcileTicket, 'code')} reconcile ticket(s) "
                f"({sum(report.values.values())} value(s) in all)."
            )
        )
