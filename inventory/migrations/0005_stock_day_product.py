"""Copies each daily rollup row's product beside its lot, so reports group by product without
joining the lots."""

import django.db.models.deletion
from django.db import migrations, models


def fill(apps, schema_editor):
    StockDay = apps.get_model("inventory", "StockDay")
    Lot = apps.get_model("inventory", "Lot")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "UPDATE inventory_stockday AS d SET product_id = l.product_id "
            "FROM inventory_lot AS l WHERE l.id = d.lot_id"
        )
        return
    for lot_id, product_id in Lot.objects.values_list("id", "product_id"):
        StockDay.objects.filter(lot_id=lot_id).update(product_id=product_id)


class Migration(migrations.Migration):
    dependencies = [("inventory", "0004_fill_stock_month")]

    operations = [
        migrations.AddField(
            model_name="stockday",
            name="product",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+",
                to="inventory.product",
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="stockday",
            name="product",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+",
                to="inventory.product",
            ),
        ),
    ]
