"""Builds the monthly rollup from the ledger for stock recorded before it existed."""

from django.conf import settings
from django.db import migrations
from django.db.models import Count, DateField, F, Sum
from django.db.models.functions import TruncMonth
from zoneinfo import ZoneInfo


def fill(apps, schema_editor):
    StockMovement = apps.get_model("inventory", "StockMovement")
    StockMonth = apps.get_model("inventory", "StockMonth")
    grouped = (
        StockMovement.objects.annotate(
            month=TruncMonth("occurred_at", output_field=DateField(),
                             tzinfo=ZoneInfo(settings.TIME_ZONE)),
            cost=F("quantity") * F("unit_cost"),
        )
        .values("month", "lot__product_id", "kind", "actor_id", "waste_reason")
        .annotate(total=Sum("quantity"), total_value=Sum("cost"), count=Count("id"))
        .order_by()
    )
    StockMonth.objects.bulk_create(
        [
            StockMonth(month=row["month"], product_id=row["lot__product_id"], kind=row["kind"],
                       actor_id=row["actor_id"], waste_reason=row["waste_reason"],
                       quantity=row["total"], value=row["total_value"], movements=row["count"])
            for row in grouped
        ],
        batch_size=2000,
    )


class Migration(migrations.Migration):
    dependencies = [("inventory", "0003_stock_month")]
    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
