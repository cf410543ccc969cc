from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from clinic.accounts import user_set_roles
from clinic.roles import MANAGER, RECEPTION
from inventory import services
from inventory.alerts import stock_digest_send
from inventory.models import StockDigest
from inventory.tasks import stock_digest
from tests.concurrency import run_at_once
from tests.factories import ProductFactory, UserFactory, receive


@pytest.fixture
def managers(db):
    return [
        user_set_roles(
            user=UserFactory(username=f"manager{n}", email=f"m{n}@clinic.example"), roles=[MANAGER]
        )
        for n in range(2)
    ]


@pytest.fixture
def stock(db):
    today = timezone.localdate()
    low = ProductFactory(name="Vitamin C cocktail", reorder_level=Decimal(5))
    receive(low, quantity="3", lot_number="VC1")
    ample = ProductFactory(name="HA 1%", reorder_level=Decimal(2))
    receive(ample, quantity="20", lot_number="HA-SOON", expiry=today + timedelta(days=10))
    receive(ample, quantity="20", lot_number="HA-LATER", expiry=today + timedelta(days=200))
    kit = ProductFactory(name="PRP kit", reorder_level=Decimal(0), category="prp", stock_unit="kit")
    held = receive(kit, quantity="4", lot_number="KIT-Q")
    services.lot_quarantine(lot=held, actor=UserFactory(), reason="seal broken")


@pytest.mark.django_db
def test_digest_goes_to_managers_with_low_expiring_and_quarantined(managers, stock):
    user_set_roles(
        user=UserFactory(username="desk", email="desk@clinic.example"), roles=[RECEPTION]
    )
    assert stock_digest.delay().get() is True
    [message] = mail.outbox
    assert sorted(message.to) == ["m0@clinic.example", "m1@clinic.example"]
    # The kit counts as low too: all of it is in quarantine, none usable.
    assert "2 low, 1 expiring, 1 in quarantine" in message.subject
    assert "Vitamin C cocktail: 3 vial usable, reorder at 5" in message.body
    assert "PRP kit: 0 kit usable, reorder at 0" in message.body
    assert "HA 1% lot HA-SOON: 20 vial, expires" in message.body
    assert "HA-LATER" not in message.body
    assert "PRP kit lot KIT-Q: 4 kit (seal broken)" in message.body
    assert message.extra_headers["Message-ID"].startswith("<stock-digest-")


@pytest.mark.django_db
def test_digest_goes_out_once_a_day_even_if_the_task_runs_twice(managers, stock):
    assert stock_digest.delay().get() is True
    assert stock_digest.delay().get() is False
    assert len(mail.outbox) == 1
    assert StockDigest.objects.get().recipients == 2


@pytest.mark.django_db
def test_a_failed_send_leaves_the_day_open_for_the_retry(managers, stock, monkeypatch):
    from django.core.mail.backends.locmem import EmailBackend

    def refuse(self, messages):
        raise OSError("SMTP down")

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)
    with pytest.raises(OSError):
        stock_digest_send(day=timezone.localdate())
    assert not StockDigest.objects.exists()
    monkeypatch.undo()
    assert stock_digest_send(day=timezone.localdate()) is True


@pytest.mark.django_db
def test_nothing_to_report_sends_nothing(managers):
    assert stock_digest_send(day=timezone.localdate()) is False
    assert mail.outbox == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_digest_runs_at_once_send_one(managers, stock):
    results = run_at_once(*[lambda: stock_digest_send(day=timezone.localdate())] * 2)
    assert sorted(results) == [False, True]
    assert len(mail.outbox) == 1
