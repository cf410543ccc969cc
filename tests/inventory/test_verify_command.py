from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from inventory.models import Lot
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
