"""A product's lot numbers are unique as printed, whatever their capitals or spaces. Refuses to
run, naming them, if some lots are already the same lot written two ways: those are merged by
hand first (a count correction moves the stock, the recall lists both until then)."""

import django.db.models.functions.text
from django.db import migrations, models


def refuse_twins(apps, schema_editor):
    Lot = apps.get_model("inventory", "Lot")
    key = django.db.models.functions.text.Upper(
        django.db.models.functions.text.Replace("lot_number", models.Value(" "), models.Value(""))
    )
    twins = (
        Lot.objects.annotate(key=key)
        .values("product_id", "key")
        .annotate(count=models.Count("id"))
        .filter(count__gt=1)
        .order_by("product_id", "key")
    )
    if twins:
        listed = ", ".join(f"product {t['product_id']} lot {t['key']}" for t in twins)
        raise RuntimeError(
            f"These lots are written two or more ways for one product: {listed}. "
            "Merge each into one lot, then migrate again."
        )


class Migration(migrations.Migration):
    dependencies = [("inventory", "0006_lot_on_shelf_index")]

    operations = [
        migrations.RunPython(refuse_twins, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="lot",
            constraint=models.UniqueConstraint(
                models.F("product"),
                django.db.models.functions.text.Upper(
                    django.db.models.functions.text.Replace(
                        "lot_number", models.Value(" "), models.Value("")
                    )
                ),
                name="lot_number_per_product_as_printed",
                violation_error_message=(
                    "This product has a lot with this number written another way (in other "
                    "capitals or spaces)."
                ),
            ),
        ),
    ]
