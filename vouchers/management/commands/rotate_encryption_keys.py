"""Re-encrypt every stored credential with the newest key in FIELD_ENCRYPTION_KEYS.

Rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it), deploy,
run this command, then remove the old keys.
"""

from django.core.management.base import BaseCommand, CommandError

from vouchers.security.crypto import CredentialDecryptionError
from vouchers.services.encryption import encryption_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt credentials, sale codes, QR images, voucher details and reconcile tickets "
        "with the newest FIELD_ENCRYPTION_KEYS key."
    )

    def handle(self, *args, **options):
        try:
            report = encryption_rotate(actor=None)
        except CredentialDecryptionError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted with the newest key: credentials of {report.campaigns} campaign(s), "
                f"{report.sale_codes} sale code(s), {report.sale_details} sale QR image(s) and voucher "
                f"detail(s), {report.reconcile_tickets} reconcile ticket(s)."
            )
        )
