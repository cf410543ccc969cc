from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from inventory import services as stock
from inventory.models import Lot, MovementKind, StockMovement
from inventory.reports import ledger_discrepancies, rollup_discrepancies
from tests.concurrency import run_at_once
from tests.factories import ProductFactory, ScreeningFactory, receive
from treatments import services
from treatments.exceptions import NotTreatable
from treatments.models import CourseStatus, SessionProduct, SessionStatus
from treatments.services import ProductLine

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()

RECORD = {
    "areas": ["full_face"],
    "technique": "nappage",
    "needle_gauge": 32,
    "needle_length_mm": Decimal("4"),
    "depth_mm": Decimal("1.5"),
    "aftercare_given": True,
    "pain_score": 2,
}


@pytest.fixture
def kit():
    product = ProductFactory(name="PRP kit", category="prp", stock_unit="kit", single_use=True)
    receive(product, lot_number="KIT1", quantity="2")
    return product


def complete(session, practitioner, lines, record=None, acknowledged=()):
    return services.session_complete(
        session=session,
        record=record or dict(RECORD),
        lines=lines,
        acknowledged=list(acknowledged),
        actor=practitioner,
    )


def test_completing_logs_takes_stock_first_expiry_first_and_signs(today_session, practitioner, ha):
    session = complete(
        today_session,
        practitioner,
        [ProductLine(product=ha, quantity=Decimal(4), area="full_face", volume_ml=Decimal("3"))],
    )
    assert (session.status, session.signed_by) == (SessionStatus.COMPLETED, practitioner)
    assert session.signed_at is not None and session.technique == "nappage"
    lines = list(session.products.order_by("id"))
    assert [(line.lot.lot_number, line.quantity) for line in lines] == [("EARLY", 3), ("LATE", 1)]
    assert all(line.movement.reference == f"session {session.pk}" for line in lines)
    assert {lot.lot_number: lot.quantity_on_hand for lot in Lot.objects.all()} == {
        "EARLY": 0,
        "LATE": 4,
    }
    record = session.history.first()
    assert (record.history_user, record.history_change_reason) == (
        practitioner,
        "Completed and signed",
    )
    session.course.refresh_from_db()
    assert session.course.status == CourseStatus.ACTIVE
    assert ledger_discrepancies() == rollup_discrepancies() == []


def test_a_double_submitted_form_completes_once(today_session, practitioner, ha):
    line = [ProductLine(product=ha, quantity=Decimal(1))]
    complete(today_session, practitioner, line)
    with pytest.raises(ValidationError, match="already completed"):
        complete(today_session, practitioner, line)
    assert StockMovement.objects.filter(kind=MovementKind.CONSUMPTION).count() == 1


def _nothing_written(session):
    session.refresh_from_db()
    assert session.status == SessionStatus.SCHEDULED and session.signed_at is None
    assert not SessionProduct.objects.exists()
    assert not StockMovement.objects.filter(kind=MovementKind.CONSUMPTION).exists()


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"depth_mm": Decimal("5")}, "more than the needle"),
        ({"technique": "nappage", "depth_mm": Decimal("3")}, "Nappage is done at"),
        ({"prp_blood_ml": Decimal("10")}, "needs a PRP kit"),
        ({"anaesthetic_minutes": 20}, "no cream was applied"),
    ],
)
def test_bad_records_are_refused_and_nothing_is_written(
    today_session, practitioner, ha, record, message
):
    with pytest.raises(ValidationError, match=message):
        complete(
            today_session,
            practitioner,
            [ProductLine(product=ha, quantity=Decimal(1))],
            record={**RECORD, **record},
        )
    _nothing_written(today_session)


def test_more_than_on_hand_is_refused_and_nothing_is_written(today_session, practitioner, ha):
    with pytest.raises(ValidationError, match="Not enough"):
        complete(today_session, practitioner, [ProductLine(product=ha, quantity=Decimal(9))])
    _nothing_written(today_session)


@pytest.mark.parametrize("setup", ["expired", "quarantined", "recalled", "other_product"])
def test_unusable_or_wrong_lots_are_refused(today_session, practitioner, ha, setup):
    lot = Lot.objects.get(lot_number="LATE")
    if setup == "expired":
        Lot.objects.filter(pk=lot.pk).update(expiry_date=TODAY - timedelta(days=1))
    elif setup == "quarantined":
        stock.lot_quarantine(lot=lot, actor=practitioner, reason="fridge")
    elif setup == "recalled":
        stock.lot_recall(lot=lot, actor=practitioner, reason="notice")
    product = ProductFactory(category="vitamin_cocktail") if setup == "other_product" else ha
    lot.refresh_from_db()
    with pytest.raises(ValidationError):
        complete(
            today_session,
            practitioner,
            [ProductLine(product=product, quantity=Decimal(1), lot=lot)],
        )
    _nothing_written(today_session)


def test_a_cancelled_session_cannot_be_completed(today_session, practitioner, desk, ha):
    services.session_cancel(session=today_session, by_patient=True, reason="ill", actor=desk)
    with pytest.raises(ValidationError, match="cannot be completed"):
        complete(today_session, practitioner, [ProductLine(product=ha, quantity=Decimal(1))])


def test_a_hard_stop_blocks_completion(today_session, practitioner, patient, ha):
    ScreeningFactory(
        patient=patient,
        taken_on=TODAY,
        pregnant_or_breastfeeding=True,
        recorded_at=timezone.now() + timedelta(minutes=1),
    )
    with pytest.raises(NotTreatable, match="Pregnant"):
        complete(today_session, practitioner, [ProductLine(product=ha, quantity=Decimal(1))])
    _nothing_written(today_session)


def test_warnings_must_be_acknowledged_and_are_recorded(today_session, practitioner, patient, ha):
    ScreeningFactory(
        patient=patient,
        taken_on=TODAY,
        anticoagulants=True,
        recorded_at=timezone.now() + timedelta(minutes=1),
    )
    line = [ProductLine(product=ha, quantity=Decimal(1))]
    with pytest.raises(NotTreatable, match="Acknowledge"):
        complete(today_session, practitioner, line)
    session = complete(today_session, practitioner, line, acknowledged=["anticoagulants"])
    assert session.acknowledged_warnings == ["anticoagulants"]
    assert session.screening.anticoagulants


def test_prp_needs_its_block_and_a_whole_kit(today_session, practitioner, kit):
    with pytest.raises(ValidationError, match="blood drawn"):
        complete(today_session, practitioner, [ProductLine(product=kit, quantity=Decimal(1))])
    prp = {
        "prp_blood_ml": Decimal("20"),
        "prp_centrifuge_rpm": 3500,
        "prp_centrifuge_minutes": 8,
        "prp_minutes_to_injection": 15,
    }
    with pytest.raises(ValidationError, match="single use"):
        complete(
            today_session,
            practitioner,
            [ProductLine(product=kit, quantity=Decimal("0.5"))],
            record={**RECORD, **prp},
        )
    session = complete(
        today_session,
        practitioner,
        [ProductLine(product=kit, quantity=Decimal(1))],
        record={**RECORD, **prp},
    )
    assert session.prp_centrifuge_rpm == 3500


def test_an_amendment_needs_a_reason_and_corrects_the_stock(today_session, practitioner, ha):
    session = complete(today_session, practitioner, [ProductLine(product=ha, quantity=Decimal(2))])
    with pytest.raises(ValidationError, match="needs a reason"):
        services.session_amend(
            session=session, actor=practitioner, reason=" ", record={"pain_score": 5}
        )
    late = Lot.objects.get(lot_number="LATE")
    amended = services.session_amend(
        session=session,
        actor=practitioner,
        reason="Logged the wrong quantity",
        record={"pain_score": 5},
        lines=[ProductLine(product=ha, quantity=Decimal(1), lot=late)],
    )
    assert amended.pain_score == 5
    assert {lot.lot_number: lot.quantity_on_hand for lot in Lot.objects.all()} == {
        "EARLY": 3,
        "LATE": 4,
    }
    voided = session.products.filter(voided_at__isnull=False)
    assert voided.count() == 1 and voided.get().void_reason == "Logged the wrong quantity"
    assert [line.lot.lot_number for line in session.products.filter(voided_at__isnull=True)] == [
        "LATE"
    ]
    before, after = session.history.all()[1], session.history.first()
    assert (before.pain_score, after.pain_score) == (2, 5)
    assert after.history_change_reason == "Logged the wrong quantity"
    assert after.history_user == practitioner
    assert ledger_discrepancies() == rollup_discrepancies() == []


def test_only_a_completed_session_is_amended(today_session, practitioner):
    with pytest.raises(ValidationError, match="Only a completed"):
        services.session_amend(
            session=today_session, actor=practitioner, reason="x", record={"pain_score": 1}
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sessions_completing_at_once_on_the_last_unit(course, practitioner, room, desk):
    """One completes; the other is refused as short and writes nothing."""
    from tests.treatments.conftest import at

    product = ProductFactory(category="hyaluronic_acid")
    receive(product, lot_number="LAST", quantity="1")
    sessions = [
        services.session_book(
            course=course,
            number=n + 1,
            start=at(TODAY, 9 + n),
            end=at(TODAY, 9 + n, 45),
            practitioner=practitioner,
            room=room,
            actor=desk,
        )
        for n in range(2)
    ]
    results = run_at_once(
        *[
            lambda session=session: complete(
                session, practitioner, [ProductLine(product=product, quantity=Decimal(1))]
            )
            for session in sessions
        ]
    )
    outcomes = [
        "short"
        if isinstance(r, ValidationError) and "Not enough" in " ".join(r.messages)
        else "completed"
        if not isinstance(r, Exception)
        else repr(r)
        for r in results
    ]
    assert sorted(outcomes) == ["completed", "short"]
    assert Lot.objects.get(lot_number="LAST").quantity_on_hand == 0
    assert SessionProduct.objects.count() == 1
    statuses = sorted(s.status for s in type(sessions[0]).objects.filter(course=course))
    assert statuses == [SessionStatus.COMPLETED, SessionStatus.SCHEDULED]
    assert ledger_discrepancies() == rollup_discrepancies() == []


def test_a_future_session_cannot_be_completed(course, practitioner, room, desk, ha):
    from tests.treatments.conftest import at

    later = TODAY + timedelta(days=20)
    session = services.session_book(
        course=course,
        number=2,
        start=at(later, 10),
        end=at(later, 11),
        practitioner=practitioner,
        room=room,
        actor=desk,
    )
    with pytest.raises(ValidationError, match="cannot be completed before then"):
        complete(session, practitioner, [ProductLine(product=ha, quantity=Decimal(1))])


def test_correcting_the_area_of_a_line_from_a_recalled_lot(today_session, practitioner, ha):
    lot = Lot.objects.get(lot_number="LATE")
    session = complete(
        today_session,
        practitioner,
        [ProductLine(product=ha, quantity=Decimal(1), lot=lot, area="cheeks")],
    )
    stock.lot_recall(lot=lot, actor=practitioner, reason="manufacturer notice")
    services.session_amend(
        session=session,
        actor=practitioner,
        reason="wrong area",
        lines=[ProductLine(product=ha, quantity=Decimal(1), lot=lot, area="forehead")],
    )
    [line] = session.products.all()
    assert (line.area, line.voided_at) == ("forehead", None)
    assert line.history.first().history_change_reason == "wrong area"
    lot.refresh_from_db()
    assert lot.quantity_on_hand == 4


def test_lines_added_by_an_amendment_carry_its_reason(today_session, practitioner, ha):
    session = complete(today_session, practitioner, [ProductLine(product=ha, quantity=Decimal(1))])
    services.session_amend(
        session=session,
        actor=practitioner,
        reason="two vials, not one",
        lines=[ProductLine(product=ha, quantity=Decimal(2))],
    )
    new = session.products.filter(voided_at__isnull=True)
    assert {line.history.get().history_change_reason for line in new} == {"two vials, not one"}
    assert {line.history.get().history_user for line in new} == {practitioner}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_named_lot_and_first_expiry_completions_at_once_do_not_deadlock(
    course, practitioner, room, desk
):
    """Lot A has the lower id but expires later than B: one session names A then B, another
    takes first expiry first. Both lock in (expiry, id) order, so neither waits in a cycle."""
    from tests.treatments.conftest import at

    product = ProductFactory(category="hyaluronic_acid")
    late = receive(product, lot_number="A", quantity="10", expiry=TODAY + timedelta(days=300))
    early = receive(product, lot_number="B", quantity="10", expiry=TODAY + timedelta(days=30))
    assert late.pk < early.pk
    sessions = [
        services.session_book(
            course=course,
            number=n + 1,
            start=at(TODAY, 9 + n),
            end=at(TODAY, 9 + n, 45),
            practitioner=practitioner,
            room=room,
            actor=desk,
        )
        for n in range(2)
    ]
    named = [
        ProductLine(product=product, quantity=Decimal(1), lot=late),
        ProductLine(product=product, quantity=Decimal(1), lot=early),
    ]
    fefo = [ProductLine(product=product, quantity=Decimal(11))]
    for _round in range(3):
        results = run_at_once(
            lambda: complete(sessions[0], practitioner, named),
            lambda: complete(sessions[1], practitioner, fefo),
        )
        assert not any("deadlock" in str(result) for result in results), results
        if all(not isinstance(result, Exception) for result in results):
            break
    assert ledger_discrepancies() == rollup_discrepancies() == []


@pytest.mark.postgres
def test_completion_locks_every_lot_it_may_touch_first_in_expiry_order(
    today_session, practitioner, ha
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    late = Lot.objects.get(lot_number="LATE")
    with CaptureQueriesContext(connection) as queries:
        complete(
            today_session,
            practitioner,
            [
                ProductLine(product=ha, quantity=Decimal(1), lot=late),
                ProductLine(product=ha, quantity=Decimal(1)),
            ],
        )
    sql = [query["sql"] for query in queries.captured_queries]
    first_lock = next(
        i for i, q in enumerate(sql) if 'FROM "inventory_lot"' in q and "FOR UPDATE" in q
    )
    first_write = next(
        i for i, q in enumerate(sql) if q.startswith('INSERT INTO "inventory_stockmovement"')
    )
    assert first_lock < first_write
    assert 'ORDER BY "inventory_lot"."expiry_date" ASC, "inventory_lot"."id" ASC' in sql[first_lock]
