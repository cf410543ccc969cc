"""An index of the lots still on the shelf (quantity above zero), for the snapshot reports."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("inventory", "0005_stock_day_product")]

    operations = [
        migrations.AddIndex(
            model_name="lot",
            index=models.Index(
                condition=models.Q(("quantity_on_hand__gt", 0)),
                fields=["product", "expiry_date", "id"],
                name="lot_on_shelf_idx",
            ),
        ),
    ]
