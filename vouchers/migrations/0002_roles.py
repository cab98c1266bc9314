"""Create the three role groups with their permissions (see vouchers/roles.py)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# A copy, not an import: a migration must keep meaning what it meant when it was written.
ROLE_PERMISSIONS = {
    "Cashier": ["vouchers.use_desk"],
    "Marketing manager": [
        "vouchers.sell_vouchers",
        "vouchers.view_sales",
        "vouchers.view_full_codes",
        "vouchers.view_stock",
    ],
    "Campaign admin": [
        "vouchers.view_campaign",
        "vouchers.add_campaign",
        "vouchers.change_campaign",
        "vouchers.view_membership",
        "vouchers.add_membership",
        "vouchers.change_membership",
        "vouchers.delete_membership",
        "auth.view_user",
        "vouchers.view_sales",
        "vouchers.view_stock",
        "vouchers.manage_stock",
        "vouchers.view_ledger",
        "vouchers.resolve_operations",
        "vouchers.view_audit",
        "vouchers.test_connection",
    ],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the groups need them now.
    for app_label in ("auth", "vouchers"):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("vouchers", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
