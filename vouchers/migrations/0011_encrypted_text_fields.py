"""Encrypted columns are declared as EncryptedTextField (vouchers.security.fields).

State only: each field gets its plain name (``full_code``, ``api_password``, ...) and keeps its
existing column through ``db_column``, so nothing in the database changes.
"""

from django.db import migrations

import vouchers.security.fields

RENAMED = [
    ("campaign", "api_password_ciphertext", "api_password", "API password", True),
    ("campaign", "api_shared_key_ciphertext", "api_shared_key", "shared key", True),
    ("reconcileticket", "code_ciphertext", "code", "code", False),
    ("sale", "full_code_ciphertext", "full_code", "code", True),
    ("sale", "qrcode_png_ciphertext", "qrcode_png_base64", "QR image", True),
    ("sale", "voucher_fields_ciphertext", "voucher_fields", "voucher details", True),
]


def _state_operations():
    operations = []
    for model, old, new, what, blank in RENAMED:
        field_class = (
            vouchers.security.fields.EncryptedJSONField
            if new == "voucher_fields"
            else vouchers.security.fields.EncryptedTextField
        )
        operations += [
            migrations.RenameField(model_name=model, old_name=old, new_name=new),
            migrations.AlterField(
                model_name=model,
                name=new,
                field=field_class(blank=blank, editable=False, db_column=old, what=what),
            ),
        ]
    return operations


class Migration(migrations.Migration):
    dependencies = [("vouchers", "0010_lina_session_phrases")]

    operations = [migrations.SeparateDatabaseAndState(state_operations=_state_operations())]
