"""Stock under concurrent sessions, on PostgreSQL with real threads and real row locks."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from inventory import services
from inventory.exceptions import InsufficientStock
from inventory.models import Lot, MovementKind, StockMovement
from inventory.reports import ledger_discrepancies
from tests.concurrency import run_at_once
from tests.factories import ProductFactory, UserFactory, receive

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def outcomes_of(count: int, work) -> list[str]:
    """`work(n)` in `count` threads at once: "ok", "insufficient", or what else was raised."""
    results = run_at_once(*[lambda n=n: work(n) for n in range(count)])
    return [
        "insufficient"
        if isinstance(result, InsufficientStock)
        else f"{type(result).__name__}: {result}"
        if isinstance(result, Exception)
        else "ok"
        for result in results
    ]


def test_twenty_consumers_of_a_lot_of_ten_leave_exactly_ten_successes():
    product = ProductFactory()
    lot = receive(product, quantity="10")
    actors = [UserFactory(username=f"practitioner{n}") for n in range(20)]

    outcomes = outcomes_of(
        20,
        lambda n: services.stock_consume(
            product=product, quantity=Decimal(1), on=timezone.localdate(), actor=actors[n]
        ),
    )

    assert sorted(outcomes) == ["insufficient"] * 10 + ["ok"] * 10
    lot.refresh_from_db()
    assert lot.quantity_on_hand == 0
    assert StockMovement.objects.filter(kind=MovementKind.CONSUMPTION).count() == 10
    assert ledger_discrepancies() == []


def test_consumers_drawing_on_two_lots_of_one_product_never_deadlock_or_oversell():
    product = ProductFactory()
    today = timezone.localdate()
    receive(product, quantity="7", expiry=today + timedelta(days=30))
    receive(product, quantity="7", expiry=today + timedelta(days=60))
    actors = [UserFactory(username=f"practitioner{n}") for n in range(10)]

    # Each takes 3, so most draws span both lots; 4 of 10 can be served from 14.
    outcomes = outcomes_of(
        10,
        lambda n: services.stock_consume(
            product=product, quantity=Decimal(3), on=today, actor=actors[n]
        ),
    )

    assert sorted(outcomes) == ["insufficient"] * 6 + ["ok"] * 4
    assert sum(lot.quantity_on_hand for lot in Lot.objects.all()) == 2
    assert ledger_discrepancies() == []


def test_named_lot_and_first_expiry_consumers_at_once_never_deadlock():
    product = ProductFactory()
    today = timezone.localdate()
    early = receive(product, quantity="6", expiry=today + timedelta(days=30))
    late = receive(product, quantity="6", expiry=today + timedelta(days=60))
    actor = UserFactory(username="practitioner")

    def work(n):
        if n % 3 == 0:
            services.stock_consume_from_lot(lot=late, quantity=Decimal(1), on=today, actor=actor)
        elif n % 3 == 1:
            services.stock_consume_from_lot(lot=early, quantity=Decimal(1), on=today, actor=actor)
        else:
            services.stock_consume(product=product, quantity=Decimal(2), on=today, actor=actor)

    outcomes = outcomes_of(12, work)
    assert len(outcomes) == 12, "a consumer never finished"
    assert all(outcome in ("ok", "insufficient") for outcome in outcomes), outcomes
    taken = -sum(m.quantity for m in StockMovement.objects.filter(kind="consumption"))
    assert taken == 12 - sum(lot.quantity_on_hand for lot in Lot.objects.all())
    assert ledger_discrepancies() == []


def test_two_deliveries_of_the_same_products_in_another_order_do_not_deadlock():
    """Each adds to a lot of one product, then receives a new lot of the other, in one
    transaction (two delivery notes imported at once): neither may hold a lock on a product
    the other's new lot or rollup row has to check."""
    first, second = ProductFactory(), ProductFactory()
    expiry = timezone.localdate() + timedelta(days=200)
    receive(first, lot_number="A", expiry=expiry)
    receive(second, lot_number="B", expiry=expiry)
    actors = [UserFactory(username=f"manager{n}") for n in range(2)]
    both_hold_a_lot = threading.Barrier(2)

    def deliver(n, existing, new):
        with transaction.atomic():
            for index, (product, lot_number) in enumerate((existing, new)):
                services.lot_receive(
                    product=product,
                    lot_number=lot_number,
                    expiry_date=expiry,
                    quantity=Decimal(1),
                    unit_cost=Decimal("12.50"),
                    actor=actors[n],
                )
                if index == 0:
                    both_hold_a_lot.wait(timeout=10)
        return "ok"

    results = run_at_once(
        lambda: deliver(0, (second, "B"), (first, "NEW-1")),
        lambda: deliver(1, (first, "A"), (second, "NEW-2")),
    )

    assert results == ["ok", "ok"]
    assert Lot.objects.count() == 4
    assert ledger_discrepancies() == []


def test_one_delivery_note_imported_twice_at_once_is_received_once():
    """A double click on the upload: both imports run together on new lots; the second waits
    for the first, then finds its receipts and is refused."""
    from inventory.imports import DeliveryImportError, delivery_import

    product = ProductFactory(name="HA 1%")
    later = (timezone.localdate() + timedelta(days=300)).isoformat()
    text = (
        "product,lot_number,expiry_date,quantity,unit_cost,supplier,reference\n"
        f"HA 1%,NEW-1,{later},10,5,,ALB-9\n"
    )
    actors = [UserFactory(username=f"manager{n}") for n in range(2)]

    results = run_at_once(
        *[lambda n=n: delivery_import(text=text, actor=actors[n]) for n in (0, 1)]
    )

    refused = [r for r in results if isinstance(r, DeliveryImportError)]
    assert len(refused) == 1, results
    assert "delivery note ALB-9 was already received into lot NEW-1" in refused[0].messages[0]
    lot = Lot.objects.get(product=product)
    assert lot.quantity_on_hand == 10
    assert lot.movements.count() == 1
