"""A sale's QR image and an allocated voucher's fields (its PIN among them) are the code in
another form: stored encrypted like the code itself (vouchers.security.crypto)."""

import json

from django.db import migrations, models


def encrypt_details(apps, schema_editor):
    from vouchers.security import crypto

    Sale = apps.get_model("vouchers", "Sale")
    rows = Sale.objects.only("pk", "qrcode_png_base64", "voucher_fields").iterator()
    for sale in rows:
        update = {}
        if sale.qrcode_png_base64:
            update["qrcode_png_ciphertext"] = crypto.encrypt(sale.qrcode_png_base64)
        if sale.voucher_fields:
            update["voucher_fields_ciphertext"] = crypto.encrypt(json.dumps(sale.voucher_fields, sort_keys=True))
        if update:
            Sale.objects.filter(pk=sale.pk).update(**update)


def decrypt_details(apps, schema_editor):
    from vouchers.security import crypto

    Sale = apps.get_model("vouchers", "Sale")
    rows = Sale.objects.only("pk", "qrcode_png_ciphertext", "voucher_fields_ciphertext").iterator()
    for sale in rows:
        update = {}
        if sale.qrcode_png_ciphertext:
            update["qrcode_png_base64"] = crypto.decrypt(sale.qrcode_png_ciphertext)
        if sale.voucher_fields_ciphertext:
            update["voucher_fields"] = json.loads(crypto.decrypt(sale.voucher_fields_ciphertext))
        if update:
            Sale.objects.filter(pk=sale.pk).update(**update)


class Migration(migrations.Migration):
    dependencies = [("vouchers", "0007_german")]

    operations = [
        migrations.AddField(
            model_name="sale",
            name="qrcode_png_ciphertext",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.AddField(
            model_name="sale",
            name="voucher_fields_ciphertext",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(encrypt_details, decrypt_details),
        migrations.RemoveField(model_name="sale", name="qrcode_png_base64"),
        migrations.RemoveField(model_name="sale", name="voucher_fields"),
    ]
