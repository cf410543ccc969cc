from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from inventory import services
from inventory.models import Lot, LotStatus, MovementKind, StockMovement
from tests.factories import ProductFactory, SupplierFactory, UserFactory, receive

pytestmark = pytest.mark.django_db


def _fill(count):
    actor = UserFactory(username="stocker")
    for _ in range(count):
        product = ProductFactory(default_supplier=SupplierFactory())
        receive(product, quantity="5", actor=actor)
        services.stock_consume(
            product=product, quantity=Decimal(1), on=timezone.localdate(), actor=actor
        )


@pytest.mark.parametrize("model", ["product", "lot", "stockmovement", "supplier"])
def test_changelists_queries_do_not_grow_with_rows(
    manager_client, django_assert_max_num_queries, model
):
    url = reverse(f"admin:inventory_{model}_changelist")
    _fill(2)
    manager_client.get(url)
    with django_assert_max_num_queries(12) as few:
        assert manager_client.get(url).status_code == 200
    _fill(15)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert manager_client.get(url).status_code == 200


def test_the_ledger_is_read_only_in_the_admin(manager_client):
    _fill(1)
    movement = StockMovement.objects.first()
    assert manager_client.get(reverse("admin:inventory_stockmovement_add")).status_code == 403
    delete = reverse("admin:inventory_stockmovement_delete", args=[movement.pk])
    assert manager_client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:inventory_stockmovement_change", args=[movement.pk])
    page = manager_client.get(change).content.decode()
    assert 'name="quantity"' not in page
    assert StockMovement.objects.count() == 2


def test_lots_are_not_added_or_deleted_in_the_admin_and_on_hand_is_read_only(manager_client):
    lot = receive(ProductFactory(), quantity="5")
    assert manager_client.get(reverse("admin:inventory_lot_add")).status_code == 403
    page = manager_client.get(reverse("admin:inventory_lot_change", args=[lot.pk]))
    assert 'name="quantity_on_hand"' not in page.content.decode()
    assert reverse("admin:inventory_lot_operate", args=[lot.pk]) in page.content.decode()


@pytest.mark.parametrize(
    ("data", "kind", "quantity"),
    [
        ({"operation": "count", "quantity": "3"}, MovementKind.COUNT_CORRECTION, -2),
        (
            {"operation": "discard", "quantity": "1", "waste_reason": "damaged"},
            MovementKind.WASTE,
            -1,
        ),
        ({"operation": "adjust", "quantity": "2", "reason": "found"}, MovementKind.ADJUSTMENT, 2),
        (
            {"operation": "return", "quantity": "5", "reason": "wrong item", "reference": "RMA"},
            MovementKind.RETURN,
            -5,
        ),
    ],
)
def test_stock_operations_on_a_lot_call_the_services(
    manager_client, manager_user, data, kind, quantity
):
    lot = receive(ProductFactory(), quantity="5")
    response = manager_client.post(reverse("admin:inventory_lot_operate", args=[lot.pk]), data)
    assert response.status_code == 302
    movement = lot.movements.order_by("-id").first()
    assert (movement.kind, movement.quantity, movement.actor) == (kind, quantity, manager_user)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"operation": "discard", "quantity": "1"}, "Choose why"),
        ({"operation": "count"}, "Enter the quantity"),
        ({"operation": "discard", "quantity": "9", "waste_reason": "damaged"}, "Not enough"),
        ({"operation": "quarantine"}, "Say why the lot is quarantined"),
    ],
)
def test_stock_operation_refusals_show_on_the_page(manager_client, data, message):
    lot = receive(ProductFactory(), quantity="5")
    response = manager_client.post(reverse("admin:inventory_lot_operate", args=[lot.pk]), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert lot.movements.count() == 1


def test_quarantine_action_asks_for_a_reason_then_changes_each_lot(manager_client):
    lots = [receive(ProductFactory(), quantity="2") for _ in range(2)]
    url = reverse("admin:inventory_lot_changelist")
    selection = {"action": "quarantine", ACTION_CHECKBOX_NAME: [lot.pk for lot in lots]}
    asked = manager_client.post(url, selection)
    assert "Reason" in asked.content.decode()
    assert Lot.objects.filter(status=LotStatus.QUARANTINED).count() == 0
    done = manager_client.post(url, {**selection, "apply": "1", "reason": "fridge alarm"})
    assert done.status_code == 302
    assert (
        Lot.objects.filter(status=LotStatus.QUARANTINED, status_reason="fridge alarm").count() == 2
    )


def test_release_action_reports_lots_it_could_not_change(manager_client):
    held = receive(ProductFactory(), quantity="2")
    services.lot_quarantine(lot=held, actor=UserFactory(), reason="check")
    free = receive(ProductFactory(), quantity="2")
    response = manager_client.post(
        reverse("admin:inventory_lot_changelist"),
        {
            "action": "release",
            ACTION_CHECKBOX_NAME: [held.pk, free.pk],
            "apply": "1",
            "reason": "checked",
        },
        follow=True,
    )
    page = response.content.decode()
    assert "1 lot(s) changed" in page and "only a quarantined lot can be released" in page


def test_reception_has_no_stock_admin(reception_client):
    assert reception_client.get(reverse("admin:inventory_lot_changelist")).status_code == 403


def test_editing_a_lot_changes_only_its_supplier(manager_client, manager_user):
    lot = receive(ProductFactory(), quantity="5")
    supplier = SupplierFactory()
    # A consumption posted while the form was open must survive the save.
    services.stock_consume(
        product=lot.product, quantity=Decimal(2), on=timezone.localdate(), actor=manager_user
    )
    response = manager_client.post(
        reverse("admin:inventory_lot_change", args=[lot.pk]), {"supplier": supplier.pk}
    )
    assert response.status_code == 302
    lot.refresh_from_db()
    assert (lot.supplier, lot.quantity_on_hand) == (supplier, 3)
    assert lot.history.first().history_change_reason == "Supplier corrected"


def test_history_cannot_be_used_to_revert_a_recalled_lot(manager_client, manager_user):
    lot = receive(ProductFactory(), quantity="5")
    services.lot_recall(lot=lot, actor=manager_user, reason="manufacturer notice")
    before = lot.history.order_by("history_date").first()
    url = reverse("admin:inventory_lot_simple_history", args=[lot.pk, before.history_id])
    assert manager_client.post(url, {"supplier": ""}).status_code == 403
    lot.refresh_from_db()
    assert lot.status == LotStatus.RECALLED
