"""Managers administer suppliers, products and lots, and read the ledger."""

from django.db import migrations

from clinic.roles import sync_roles

ROLE_PERMISSIONS = {
    "Manager": frozenset({
        "clinic.view_reports",
        "inventory.add_supplier", "inventory.change_supplier", "inventory.view_supplier",
        "inventory.add_product", "inventory.change_product", "inventory.view_product",
        "inventory.add_lot", "inventory.change_lot", "inventory.view_lot",
        "inventory.view_stockmovement",
    }),
}


def apply(apps, schema_editor):
    sync_roles(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [("clinic", "0002_roles"), ("inventory", "0001_initial")]
    operations = [migrations.RunPython(apply, migrations.RunPython.noop)]
