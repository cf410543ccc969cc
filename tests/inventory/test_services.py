from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from inventory import services
from inventory.exceptions import InsufficientStock, LotNotUsable
from inventory.models import Lot, LotStatus, MovementKind, StockDay, StockMovement
from tests.factories import ProductFactory, SupplierFactory, UserFactory, receive

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ledger_is_consistent")]

TODAY = timezone.localdate


@pytest.fixture
def actor():
    return UserFactory(username="teresa")


@pytest.fixture
def product():
    return ProductFactory()


def movements(lot):
    return list(lot.movements.order_by("id").values_list("kind", "quantity"))


# Receiving


def test_receive_creates_the_lot_and_a_receipt(product, actor):
    supplier = SupplierFactory()
    movement = services.lot_receive(
        product=product,
        lot_number=" A123 ",
        expiry_date=TODAY() + timedelta(days=200),
        quantity=Decimal("12"),
        unit_cost=Decimal("9.999"),
        supplier=supplier,
        actor=actor,
        reference="Albarán 77",
    )
    lot = Lot.objects.get()
    assert (lot.lot_number, lot.quantity_on_hand, lot.unit_cost) == ("A123", 12, Decimal("10.00"))
    assert lot.supplier == supplier and lot.received_on == TODAY()
    assert (movement.kind, movement.quantity, movement.actor, movement.reference) == (
        MovementKind.RECEIPT,
        12,
        actor,
        "Albarán 77",
    )
    assert lot.history.get().history_user == actor


def test_receiving_the_same_lot_again_adds_to_it_at_average_cost(product, actor):
    expiry = TODAY() + timedelta(days=100)
    receive(product, lot_number="A1", expiry=expiry, quantity="10", cost="10.00", actor=actor)
    receive(product, lot_number="A1", expiry=expiry, quantity="30", cost="14.00", actor=actor)
    lot = Lot.objects.get()
    assert lot.quantity_on_hand == 40
    assert lot.unit_cost == Decimal("13.00")
    assert movements(lot) == [("receipt", 10), ("receipt", 30)]


def test_same_lot_number_with_another_expiry_is_refused(product, actor):
    receive(product, lot_number="A1", expiry=TODAY() + timedelta(days=100))
    with pytest.raises(ValidationError, match="check the box") as raised:
        receive(product, lot_number="A1", expiry=TODAY() + timedelta(days=101))
    assert "expiry_date" in raised.value.message_dict
    assert Lot.objects.get().quantity_on_hand == 10


def test_the_same_lot_number_of_another_product_is_another_lot(actor):
    expiry = TODAY() + timedelta(days=100)
    receive(ProductFactory(), lot_number="A1", expiry=expiry)
    receive(ProductFactory(), lot_number="A1", expiry=expiry + timedelta(days=5))
    assert Lot.objects.count() == 2


@pytest.mark.parametrize("typed", ["ab123", "AB 123", " a b 1 2 3 "])
def test_a_lot_number_written_another_way_is_refused_as_that_lot_mistyped(product, actor, typed):
    expiry = TODAY() + timedelta(days=100)
    receive(product, lot_number="AB123", expiry=expiry, actor=actor)
    with pytest.raises(ValidationError, match="has lot AB123 on file") as raised:
        receive(product, lot_number=typed, expiry=expiry, actor=actor)
    assert "lot_number" in raised.value.message_dict
    assert Lot.objects.get().quantity_on_hand == 10


def test_the_database_itself_keeps_one_lot_whatever_its_capitals_or_spaces(product, actor):
    lot = receive(product, lot_number="AB123", actor=actor)
    twin = Lot(
        product=product,
        lot_number="ab 123",
        expiry_date=lot.expiry_date,
        unit_cost=Decimal(1),
        received_on=TODAY(),
    )
    with pytest.raises(ValidationError, match="written another way"):
        twin.validate_constraints()
    with pytest.raises(IntegrityError), transaction.atomic():
        twin.save()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"expiry_date": -1}, "expiry_date"),
        ({"quantity": Decimal(0)}, "quantity"),
        ({"quantity": Decimal("-3")}, "quantity"),
        ({"quantity": Decimal("1.0001")}, "quantity"),
        ({"unit_cost": Decimal("-1")}, "unit_cost"),
        ({"lot_number": "  "}, "lot_number"),
        # Numbers no column can hold, or that are no numbers at all.
        ({"quantity": Decimal("1e30")}, "quantity"),
        ({"quantity": "Infinity"}, "quantity"),
        ({"unit_cost": Decimal("NaN")}, "unit_cost"),
        ({"unit_cost": "Infinity"}, "unit_cost"),
        ({"unit_cost": Decimal("1e30")}, "unit_cost"),
        ({"unit_cost": None}, "unit_cost"),
    ],
)
def test_receiving_bad_input_is_refused_and_writes_nothing(product, actor, changes, field):
    arguments = {
        "product": product,
        "lot_number": "A1",
        "expiry_date": TODAY() + timedelta(days=30),
        "quantity": Decimal(5),
        "unit_cost": Decimal(3),
        "actor": actor,
    }
    if "expiry_date" in changes:
        arguments["expiry_date"] = TODAY() + timedelta(days=changes.pop("expiry_date"))
    arguments.update(changes)
    with pytest.raises(ValidationError) as raised:
        services.lot_receive(**arguments)
    assert field in raised.value.message_dict
    assert Lot.objects.count() == 0 and StockMovement.objects.count() == 0


def test_what_the_columns_cannot_hold_is_refused_before_anything_is_written(product, actor):
    expiry = TODAY() + timedelta(days=30)
    with pytest.raises(ValidationError, match="worth 1,000,000,000 or more is refused"):
        receive(product, lot_number="L", quantity="999999", cost="9999999", expiry=expiry)
    # A cost that rounds up to the cent to what the column cannot hold.
    with pytest.raises(ValidationError, match="Enter less than 100,000,000"):
        receive(product, lot_number="L", quantity="1", cost="99999999.999", expiry=expiry)
    lot = receive(product, lot_number="BIG", quantity="999999999", cost="0", expiry=expiry)
    with pytest.raises(ValidationError, match="A lot holds less than 1,000,000,000"):
        receive(product, lot_number="BIG", quantity="1", cost="0", expiry=expiry)
    lot.refresh_from_db()
    assert lot.quantity_on_hand == 999999999
    assert StockMovement.objects.count() == 1


def test_a_lot_expiring_today_may_still_be_received(product, actor):
    receive(product, expiry=TODAY())
    assert Lot.objects.get().quantity_on_hand == 10


def test_an_inactive_product_cannot_be_received(actor):
    with pytest.raises(ValidationError, match="no longer active"):
        receive(ProductFactory(active=False))


def test_a_recalled_lot_cannot_be_received_again(product, actor):
    lot = receive(product, lot_number="R1")
    services.lot_recall(lot=lot, actor=actor, reason="Manufacturer notice 12/2026")
    with pytest.raises(LotNotUsable, match="recalled"):
        receive(product, lot_number="R1", expiry=lot.expiry_date)
    assert Lot.objects.get().quantity_on_hand == 10


# Consuming, first expiry first out


def test_consume_takes_earliest_expiry_first_across_lots(product, actor):
    late = receive(product, quantity="5", expiry=TODAY() + timedelta(days=300))
    early = receive(product, quantity="2", expiry=TODAY() + timedelta(days=20))
    middle = receive(product, quantity="4", expiry=TODAY() + timedelta(days=100))
    taken = services.stock_consume(
        product=product, quantity=Decimal(5), on=TODAY(), actor=actor, reference="session 9"
    )
    assert [(m.lot_id, m.quantity) for m in taken] == [(early.pk, -2), (middle.pk, -3)]
    assert {lot.pk: lot.quantity_on_hand for lot in Lot.objects.all()} == {
        early.pk: 0,
        middle.pk: 1,
        late.pk: 5,
    }


def test_an_expired_lot_is_never_consumed(product, actor):
    expired = receive(product, quantity="5", expiry=TODAY() + timedelta(days=3))
    fresh = receive(product, quantity="5", expiry=TODAY() + timedelta(days=90))
    on = TODAY() + timedelta(days=4)
    taken = services.stock_consume(product=product, quantity=Decimal(2), on=on, actor=actor)
    assert [m.lot_id for m in taken] == [fresh.pk]
    with pytest.raises(InsufficientStock):
        services.stock_consume(product=product, quantity=Decimal(4), on=on, actor=actor)
    expired.refresh_from_db()
    assert expired.quantity_on_hand == 5


def test_a_lot_is_usable_on_its_expiry_date(product, actor):
    lot = receive(product, expiry=TODAY() + timedelta(days=10))
    taken = services.stock_consume(
        product=product, quantity=Decimal(1), on=TODAY() + timedelta(days=10), actor=actor
    )
    assert taken[0].lot_id == lot.pk


@pytest.mark.parametrize("status", ["quarantine", "recall"])
def test_quarantined_and_recalled_lots_are_skipped(product, actor, status):
    blocked = receive(product, quantity="5", expiry=TODAY() + timedelta(days=10))
    usable = receive(product, quantity="5", expiry=TODAY() + timedelta(days=90))
    getattr(services, f"lot_{status}")(lot=blocked, actor=actor, reason="cold chain")
    taken = services.stock_consume(product=product, quantity=Decimal(1), on=TODAY(), actor=actor)
    assert [m.lot_id for m in taken] == [usable.pk]


def test_consuming_more_than_is_usable_takes_nothing(product, actor):
    receive(product, quantity="2", expiry=TODAY() + timedelta(days=10))
    receive(product, quantity="2", expiry=TODAY() + timedelta(days=20))
    with pytest.raises(InsufficientStock) as raised:
        services.stock_consume(product=product, quantity=Decimal(5), on=TODAY(), actor=actor)
    assert "5 wanted, 4 usable" in raised.value.messages[0]
    assert StockMovement.objects.filter(kind=MovementKind.CONSUMPTION).count() == 0
    assert sum(lot.quantity_on_hand for lot in Lot.objects.all()) == 4


def test_consuming_fractions_of_a_unit(product, actor):
    lot = receive(product, quantity="1")
    services.stock_consume(product=product, quantity=Decimal("0.25"), on=TODAY(), actor=actor)
    lot.refresh_from_db()
    assert lot.quantity_on_hand == Decimal("0.75")


# Consuming from a named lot


def test_consume_from_a_named_lot(product, actor):
    receive(product, quantity="5", expiry=TODAY() + timedelta(days=10))
    chosen = receive(product, quantity="5", expiry=TODAY() + timedelta(days=90))
    movement = services.stock_consume_from_lot(
        lot=chosen, quantity=Decimal(2), on=TODAY(), actor=actor
    )
    chosen.refresh_from_db()
    assert (movement.lot_id, chosen.quantity_on_hand) == (chosen.pk, 3)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("expired", "expired on"),
        ("quarantine", "quarantine"),
        ("recall", "recalled"),
        ("short", "Not enough"),
    ],
)
def test_consume_from_a_named_lot_refusals(product, actor, setup, message):
    lot = receive(product, quantity="3", expiry=TODAY() + timedelta(days=5))
    on = TODAY() + timedelta(days=6) if setup == "expired" else TODAY()
    if setup in ("quarantine", "recall"):
        getattr(services, f"lot_{setup}")(lot=lot, actor=actor, reason="supplier notice")
    quantity = Decimal(4) if setup == "short" else Decimal(1)
    with pytest.raises(ValidationError, match=message):
        services.stock_consume_from_lot(lot=lot, quantity=quantity, on=on, actor=actor)
    lot.refresh_from_db()
    assert lot.quantity_on_hand == 3


def test_reversing_a_consumption_puts_the_stock_back_once(product, actor):
    lot = receive(product, quantity="5")
    [taken] = services.stock_consume(
        product=product, quantity=Decimal(2), on=TODAY(), actor=actor, reference="session 4"
    )
    back = services.movement_reverse(movement=taken, actor=actor, reason="Wrong product logged")
    lot.refresh_from_db()
    assert lot.quantity_on_hand == 5
    assert (back.kind, back.quantity, back.reverses, back.reference) == (
        MovementKind.CONSUMPTION,
        2,
        taken,
        "session 4",
    )
    with pytest.raises(ValidationError, match="already reversed"):
        services.movement_reverse(movement=taken, actor=actor, reason="again")
    with pytest.raises(ValidationError, match="Only a consumption"):
        services.movement_reverse(movement=back, actor=actor, reason="reverse the reversal")


def test_a_reversal_puts_the_units_back_at_the_cost_they_left_at(product, actor):
    """10 received at 10.00, 2 consumed, 10 more at 30.00 (the lot averages to 21.11), then the
    consumption is reversed: it comes back at 10.00, as if it had never left, and the lot's
    cost becomes 20.00, what it would have been."""
    expiry = TODAY() + timedelta(days=100)
    receive(product, lot_number="L", quantity="10", cost="10", expiry=expiry, actor=actor)
    [taken] = services.stock_consume(product=product, quantity=Decimal(2), on=TODAY(), actor=actor)
    lot = receive(product, lot_number="L", quantity="10", cost="30", expiry=expiry, actor=actor)
    assert lot.unit_cost == Decimal("21.11")
    back = services.movement_reverse(movement=taken, actor=actor, reason="logged twice")
    lot.refresh_from_db()
    assert back.unit_cost == taken.unit_cost == Decimal(10)
    assert (lot.quantity_on_hand, lot.unit_cost) == (20, Decimal(20))
    assert lot.history.first().history_change_reason == (
        "Average cost after a consumption was reversed"
    )


def test_a_reversal_onto_an_emptied_lot_takes_the_cost_it_left_at(product, actor):
    expiry = TODAY() + timedelta(days=100)
    receive(product, lot_number="L", quantity="2", cost="10", expiry=expiry, actor=actor)
    [taken] = services.stock_consume(product=product, quantity=Decimal(2), on=TODAY(), actor=actor)
    lot = Lot.objects.get()
    Lot.objects.filter(pk=lot.pk).update(unit_cost=Decimal(12))  # as if it had been revalued
    services.movement_reverse(movement=taken, actor=actor, reason="logged twice")
    lot.refresh_from_db()
    assert (lot.quantity_on_hand, lot.unit_cost) == (2, Decimal(10))


# Waste, adjustments, counts, returns, status


def test_discard_records_the_reason_even_from_an_expired_lot(product, actor):
    lot = receive(product, quantity="5", expiry=TODAY())
    Lot.objects.filter(pk=lot.pk).update(expiry_date=TODAY() - timedelta(days=1))
    movement = services.stock_discard(
        lot=lot, quantity=Decimal(5), reason="expired", actor=actor, note="found in the fridge"
    )
    assert (movement.kind, movement.quantity, movement.waste_reason) == ("waste", -5, "expired")
    lot.refresh_from_db()
    assert lot.quantity_on_hand == 0


def test_discard_needs_a_known_reason_and_enough_stock(product, actor):
    lot = receive(product, quantity="2")
    with pytest.raises(ValidationError, match="Choose why"):
        services.stock_discard(lot=lot, quantity=Decimal(1), reason="lost", actor=actor)
    with pytest.raises(InsufficientStock, match=r"3 wanted, .* on hand"):
        services.stock_discard(lot=lot, quantity=Decimal(3), reason="damaged", actor=actor)


def test_adjustments_are_signed_and_need_a_reason(product, actor):
    lot = receive(product, quantity="2")
    services.stock_adjust(lot=lot, quantity=Decimal(1), reason="found a vial", actor=actor)
    services.stock_adjust(lot=lot, quantity=Decimal(-2), reason="broken in transit", actor=actor)
    lot.refresh_from_db()
    assert lot.quantity_on_hand == 1
    with pytest.raises(ValidationError, match="Say why"):
        services.stock_adjust(lot=lot, quantity=Decimal(1), reason=" ", actor=actor)
    with pytest.raises(ValidationError, match="other than zero: more to add, less to take away"):
        services.stock_adjust(lot=lot, quantity=Decimal(0), reason="nothing", actor=actor)
    with pytest.raises(ValidationError, match="between -1,000,000,000 and 1,000,000,000"):
        services.stock_adjust(lot=lot, quantity=Decimal("-1e12"), reason="typo", actor=actor)
    with pytest.raises(ValidationError, match="Enter a number"):
        services.stock_adjust(lot=lot, quantity="NaN", reason="typo", actor=actor)
    with pytest.raises(InsufficientStock):
        services.stock_adjust(lot=lot, quantity=Decimal(-2), reason="too many", actor=actor)


def test_a_count_posts_the_difference(product, actor):
    lot = receive(product, quantity="10")
    correction = services.stock_count(lot=lot, counted=Decimal(8), actor=actor)
    assert (correction.kind, correction.quantity) == (MovementKind.COUNT_CORRECTION, -2)
    assert "8 counted, 10 on the books" in correction.reason
    assert services.stock_count(lot=lot, counted=Decimal(8), actor=actor) is None
    services.stock_count(lot=lot, counted=Decimal(9), actor=actor, note="box behind the door")
    lot.refresh_from_db()
    assert lot.quantity_on_hand == 9
    with pytest.raises(ValidationError, match="0 or more"):
        services.stock_count(lot=lot, counted=Decimal(-1), actor=actor)
    with pytest.raises(ValidationError, match="Enter less than"):
        services.stock_count(lot=lot, counted=Decimal("1e30"), actor=actor)


def test_return_to_supplier(product, actor):
    lot = receive(product, quantity="10")
    services.lot_quarantine(lot=lot, actor=actor, reason="temperature logger alarm")
    movement = services.lot_return(
        lot=lot, quantity=Decimal(10), actor=actor, reason="cold chain", reference="RMA-4"
    )
    assert (movement.kind, movement.quantity, movement.reference) == ("return", -10, "RMA-4")


def test_quarantine_release_and_recall_transitions(product, actor):
    lot = receive(product)
    lot = services.lot_quarantine(lot=lot, actor=actor, reason="box damaged")
    assert (lot.status, lot.status_reason) == (LotStatus.QUARANTINED, "box damaged")
    with pytest.raises(ValidationError, match="only an available lot"):
        services.lot_quarantine(lot=lot, actor=actor, reason="again")
    lot = services.lot_release(lot=lot, actor=actor)
    assert lot.status == LotStatus.AVAILABLE
    with pytest.raises(ValidationError, match="only a quarantined lot"):
        services.lot_release(lot=lot, actor=actor)
    lot = services.lot_recall(lot=lot, actor=actor, reason="AEMPS alert 2026/12")
    assert lot.status == LotStatus.RECALLED
    with pytest.raises(ValidationError, match="already recalled"):
        services.lot_recall(lot=lot, actor=actor, reason="again")
    with pytest.raises(ValidationError, match="only a quarantined lot"):
        services.lot_release(lot=lot, actor=actor)
    history = [(h.status, h.history_user, h.history_change_reason) for h in lot.history.all()]
    assert history[0] == (LotStatus.RECALLED, actor, "AEMPS alert 2026/12")
    assert (LotStatus.QUARANTINED, actor, "box damaged") in history


def test_a_status_change_needs_a_reason(product, actor):
    lot = receive(product)
    for change in (services.lot_quarantine, services.lot_recall):
        with pytest.raises(ValidationError, match="Say"):
            change(lot=lot, actor=actor, reason="")


# The ledger itself


def test_the_ledger_cannot_be_edited_or_deleted(product, actor):
    receive(product)
    movement = StockMovement.objects.get()
    movement.quantity = 99
    with pytest.raises(TypeError, match="append-only"):
        movement.save()
    with pytest.raises(TypeError, match="append-only"):
        movement.delete()
    with pytest.raises(TypeError, match="append-only"):
        StockMovement.objects.filter(pk=movement.pk).update(quantity=1)
    with pytest.raises(TypeError, match="append-only"):
        StockMovement.objects.all().delete()


@pytest.mark.postgres
def test_postgresql_itself_refuses_to_change_a_ledger_line(product, actor):
    receive(product)
    from django.db import connection

    for statement in (
        "UPDATE inventory_stockmovement SET quantity = 1",
        "DELETE FROM inventory_stockmovement",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert StockMovement.objects.get().quantity == 10


def test_the_database_refuses_negative_stock(product, actor):
    lot = receive(product, quantity="1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Lot.objects.filter(pk=lot.pk).update(quantity_on_hand=-1)


def test_the_rollup_sums_each_day_lot_kind_and_user(product, actor):
    lot = receive(product, quantity="10", actor=actor)
    for _ in range(3):
        services.stock_consume(product=product, quantity=Decimal(1), on=TODAY(), actor=actor)
    services.stock_discard(lot=lot, quantity=Decimal(1), reason="damaged", actor=actor)
    rows = {
        (r.kind, r.waste_reason): (r.quantity, r.value, r.movements) for r in StockDay.objects.all()
    }
    assert rows == {
        ("receipt", ""): (10, Decimal("125.00"), 1),
        ("consumption", ""): (-3, Decimal("-37.50"), 3),
        ("waste", "damaged"): (-1, Decimal("-12.50"), 1),
    }


def test_stock_lock_takes_lots_in_expiry_then_id_order(product, actor):
    late = receive(product, lot_number="LATE", expiry=TODAY() + timedelta(days=300))
    early = receive(product, lot_number="EARLY", expiry=TODAY() + timedelta(days=30))
    other = ProductFactory()
    middle = receive(other, lot_number="MIDDLE", expiry=TODAY() + timedelta(days=100))
    locked = services.stock_lock(lots=[late], products=[other, product])
    assert [lot.pk for lot in locked] == [early.pk, middle.pk, late.pk]


@pytest.mark.postgres
def test_the_migration_names_lots_already_written_two_ways(product, actor):
    """Data from before the constraint: the migration stops and names the twins to merge."""
    import importlib

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("inventory.migrations.0007_lot_number_as_printed")
    lot = receive(product, lot_number="AB123", actor=actor)
    with connection.cursor() as cursor:  # rolled back with the test
        cursor.execute("DROP INDEX lot_number_per_product_as_printed")
    Lot.objects.create(
        product=product,
        lot_number="ab 123",
        expiry_date=lot.expiry_date,
        unit_cost=Decimal(1),
        received_on=TODAY(),
    )
    twin = Lot.objects.get(lot_number="ab 123")
    with pytest.raises(RuntimeError) as raised:
        migration.refuse_twins(apps, None)
    assert f"product #{product.pk}: lot #{lot.pk} 'AB123', lot #{twin.pk} 'ab 123'" in str(
        raised.value
    )
