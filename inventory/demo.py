"""A believable stock room for `seed_demo`: suppliers, the products of facial and body
mesotherapy, lots received over the last months, consumption, waste, a quarantined lot and
lots close to expiry. Written through the services, so the ledger is what the clinic's own use
would have produced."""

import random
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from clinic.substances import SubstanceCategory as S

from . import services
from .models import Product, Storage, Supplier

SUPPLIERS = [
    ("Mesoestetic Distribución", "pedidos@meso-dist.example", "+34 932 000 111"),
    ("Dermo Supplies Ibérica", "orders@dermosupplies.example", "+34 910 000 222"),
    ("Clinical Consumables SL", "ventas@clinicalconsumables.example", "+34 963 000 333"),
]
# name, manufacturer, category, unit, content, measure, single use, storage, GTIN, reorder, cost
PRODUCTS = [
    (
        "Non-cross-linked HA 1% 5 ml",
        "Lumina Derm",
        S.HYALURONIC_ACID,
        "vial",
        "5",
        "ml",
        False,
        Storage.ROOM,
        "08437012345015",
        "10",
        "18.50",
    ),
    (
        "Non-cross-linked HA 2% 3 ml",
        "Lumina Derm",
        S.HYALURONIC_ACID,
        "syringe",
        "3",
        "ml",
        True,
        Storage.ROOM,
        "08437012345022",
        "6",
        "32.00",
    ),
    (
        "NCTF-type polyrevitalising cocktail 3 ml",
        "Fillmed",
        S.VITAMIN_COCKTAIL,
        "vial",
        "3",
        "ml",
        False,
        Storage.ROOM,
        "08437012345039",
        "10",
        "41.00",
    ),
    (
        "Vitamin C 20% ampoule 5 ml",
        "Meso Labs",
        S.VITAMIN_COCKTAIL,
        "ampoule",
        "5",
        "ml",
        False,
        Storage.FRIDGE,
        "08437012345046",
        "12",
        "6.80",
    ),
    (
        "Biotin and B-complex hair cocktail 5 ml",
        "Meso Labs",
        S.VITAMIN_COCKTAIL,
        "vial",
        "5",
        "ml",
        False,
        Storage.ROOM,
        "08437012345053",
        "8",
        "9.90",
    ),
    (
        "Organic silicon 5 ml",
        "Meso Labs",
        S.VITAMIN_COCKTAIL,
        "ampoule",
        "5",
        "ml",
        False,
        Storage.ROOM,
        "08437012345060",
        "8",
        "5.40",
    ),
    (
        "PRP kit, single spin, 10 ml tube",
        "Regen Lab",
        S.PRP,
        "kit",
        "1",
        "pieces",
        True,
        Storage.ROOM,
        "08437012345077",
        "6",
        "55.00",
    ),
    (
        "Lidocaine 5% anaesthetic cream 30 g",
        "Pharma Nord",
        S.ANAESTHETIC,
        "tube",
        "30",
        "g",
        False,
        Storage.ROOM,
        "08437012345084",
        "4",
        "12.30",
    ),
    (
        "Mesotherapy needle 30G 4 mm",
        "Meso-relle",
        S.CONSUMABLE,
        "piece",
        None,
        "",
        True,
        Storage.ROOM,
        "08437012345091",
        "200",
        "0.18",
    ),
    (
        "Mesotherapy needle 32G 4 mm",
        "Meso-relle",
        S.CONSUMABLE,
        "piece",
        None,
        "",
        True,
        Storage.ROOM,
        "08437012345107",
        "200",
        "0.22",
    ),
    (
        "Mesogun cartridge",
        "Meso-relle",
        S.CONSUMABLE,
        "piece",
        None,
        "",
        True,
        Storage.ROOM,
        "08437012345114",
        "30",
        "1.10",
    ),
    (
        "Luer-lock syringe 5 ml",
        "BD",
        S.CONSUMABLE,
        "piece",
        None,
        "",
        True,
        Storage.ROOM,
        "08437012345121",
        "100",
        "0.12",
    ),
]
REASONS = ["opened_unused", "damaged", "opened_unused", "expired"]


def _at(day, hour=9) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, 0)))


def seed_stock(
    *, actor: AbstractBaseUser, consumers: list[AbstractBaseUser], seed: int = 2026
) -> int:
    """Loads the stock room once; returns how many lots were received (0 if already there)."""
    if Product.objects.exists():
        return 0
    rng = random.Random(seed)
    suppliers = [
        Supplier.objects.create(name=name, email=email, phone=phone)
        for name, email, phone in SUPPLIERS
    ]
    today = timezone.localdate()
    lots = 0
    for index, (
        name,
        maker,
        category,
        unit,
        content,
        measure,
        single,
        storage,
        gtin,
        reorder,
        cost,
    ) in enumerate(PRODUCTS):
        product = Product.objects.create(
            name=name,
            manufacturer=maker,
            category=category,
            stock_unit=unit,
            content_per_unit=Decimal(content) if content else None,
            content_measure=measure,
            single_use=single,
            storage=storage,
            gtin=gtin,
            reorder_level=Decimal(reorder),
            default_supplier=suppliers[index % len(suppliers)],
        )
        bulk = category == S.CONSUMABLE
        for batch in range(3):
            received = today - timedelta(days=150 - batch * 50)
            expiry = today + timedelta(days=rng.choice([20, 45, 80, 200, 400]) + batch * 60)
            quantity = Decimal(rng.choice([300, 500]) if bulk else rng.choice([10, 20, 30]))
            services.lot_receive(
                product=product,
                lot_number=f"{gtin[-5:]}-{received:%y%m}{batch}",
                expiry_date=expiry,
                quantity=quantity,
                unit_cost=Decimal(cost) * Decimal(rng.choice(["1", "1.05", "0.95"])),
                supplier=product.default_supplier,
                reference=f"ALB-{received:%Y%m%d}",
                occurred_at=_at(received, 10),
                actor=actor,
            )
            lots += 1
        # Consumption over the last four months, a little less than what came in.
        for day_back in range(120, 0, -1):
            day = today - timedelta(days=day_back)
            if day.weekday() >= 5 or rng.random() < 0.8:
                continue
            quantity = Decimal(rng.randint(15, 40) if bulk else rng.randint(1, 2))
            try:
                services.stock_consume(
                    product=product,
                    quantity=quantity,
                    on=day,
                    actor=rng.choice(consumers),
                    occurred_at=_at(day, 12),
                    reference=f"demo session {day:%Y%m%d}",
                )
            except services.InsufficientStock:
                break
        lot = product.lots.filter(quantity_on_hand__gt=1).order_by("expiry_date").first()
        if lot and not bulk:
            services.stock_discard(
                lot=lot, quantity=Decimal(1), reason=rng.choice(REASONS), actor=actor, note="demo"
            )
        if index == 3 and lot:
            services.lot_quarantine(
                lot=lot, actor=actor, reason="Fridge logger read 11 °C overnight"
            )
    return lots
