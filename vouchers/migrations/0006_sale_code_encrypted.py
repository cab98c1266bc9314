"""Sale codes are stored encrypted, like provider credentials (vouchers.security.crypto)."""

from django.db import migrations, models


def encrypt_codes(apps, schema_editor):
    from vouchers.security import crypto

    Sale = apps.get_model("vouchers", "Sale")
    for sale in Sale.objects.exclude(full_code="").only("pk", "full_code").iterator():
        Sale.objects.filter(pk=sale.pk).update(full_code_ciphertext=crypto.encrypt(sale.full_code))


def decrypt_codes(apps, schema_editor):
    from vouchers.security import crypto

    Sale = apps.get_model("vouchers", "Sale")
    for sale in Sale.objects.exclude(full_code_ciphertext="").only("pk", "full_code_ciphertext").iterator():
        Sale.objects.filter(pk=sale.pk).update(full_code=crypto.decrypt(sale.full_code_ciphertext)[:128])


class Migration(migrations.Migration):
    dependencies = [("vouchers", "0005_selling")]

    operations = [
        migrations.AddField(
            model_name="sale",
            name="full_code_ciphertext",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(encrypt_codes, decrypt_codes),
        migrations.RemoveField(model_name="sale", name="full_code"),
    ]
