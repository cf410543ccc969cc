"""A product's lot numbers are unique as printed, whatever their capitals or spaces.

Refuses to run, naming them (id and number as stored), if some lots are already one lot written
two ways. For each such group, give every mistyped lot a number that tells it apart (say
"AB123-DUP") in `manage.py shell`, saving it through the model so that the lot's history
records the change, and move its stock to the right lot with a stock count and an adjustment;
then migrate again. Its movements stay where they were posted: the recall list of the right
lot does not show them, that of the renamed one does."""

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
    )
    groups = {(t["product_id"], t["key"]) for t in twins}
    if not groups:
        return
    lots = Lot.objects.annotate(key=key).order_by("product_id", "key", "id")
    listed = "; ".join(
        f"product #{product_id}: "
        + ", ".join(
            f"lot #{lot.id} {lot.lot_number!r}"
            for lot in lots.filter(product_id=product_id, key=printed)
        )
        for product_id, printed in sorted(groups)
    )
    raise RuntimeError(
        f"These lots are one lot written two or more ways: {listed}. Give each mistyped one a "
        "number that tells it apart (see this migration's notes), then migrate again."
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
