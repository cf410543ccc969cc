from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from inventory.models import Lot, StockDay, StockMonth
from tests.factories import ProductFactory, receive

pytestmark = pytest.mark.django_db


def test_verify_passes_when_every_lot_agrees(capsys):
    receive(ProductFactory(), quantity="4")
    call_command("verify_stock_ledger")
    assert "Every lot agrees" in capsys.readouterr().out


def test_verify_lists_each_lot_that_differs_and_fails(capsys):
    good = receive(ProductFactory(), quantity="4")
    bad = receive(ProductFactory(), quantity="4", lot_number="BAD-1")
    Lot.objects.filter(pk=bad.pk).update(quantity_on_hand=Decimal(3))
    with pytest.raises(CommandError, match="1 lot") as raised:
        call_command("verify_stock_ledger")
    assert raised.value.returncode == 1
    err = capsys.readouterr().err
    assert f"lot #{bad.pk}" in err and "BAD-1" in err
    assert "on hand 3, sum of movements 4, daily rollup 4" in err
    assert f"lot #{good.pk}" not in err


def test_verify_lists_rollup_rows_that_differ_from_what_they_sum_up(capsys):
    """Totals per lot and per product still agree, but a day's row has moved to another day
    and kind, and a month's row has the wrong value: the reports would show both."""
    product = ProductFactory()
    lot = receive(product, quantity="4", cost="2")
    day = StockDay.objects.get(lot=lot)
    StockDay.objects.filter(pk=day.pk).update(day=day.day - timedelta(days=40), kind="waste")
    StockMonth.objects.filter(product=product).update(value=Decimal(7))
    with pytest.raises(CommandError, match="rollup row") as raised:
        call_command("verify_stock_ledger")
    assert raised.value.returncode == 1
    err = capsys.readouterr().err
    assert f"daily rollup, lot #{lot.pk}, {day.day}, receipt by user" in err
    assert "ledger 4 worth 8 in 1 movement(s), rollup no row" in err
    assert f"daily rollup, lot #{lot.pk}, {day.day - timedelta(days=40)}, waste by user" in err
    assert (
        f"monthly rollup, product #{product.pk}, {day.day.replace(day=1)}, receipt by user "
        f"#{lot.movements.get().actor_id}: daily rollup no row, rollup 4 worth 7 in 1 movement(s)"
    ) in err
    assert "lot(s) differ" not in str(raised.value)
