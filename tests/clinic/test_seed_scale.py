"""`seed_demo --scale`: the bulk fill keeps the invariants the app keeps (ledger, rollups, no
double booking, history), on a few hundred patients."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Count, F, Q

from clinic import scale
from inventory.models import Lot, StockMovement
from inventory.reports import ledger_discrepancies, month_discrepancies, rollup_discrepancies
from patients.models import Consent, Patient, Screening, name_key
from patients.selectors import patient_search_filter
from treatments.models import Course, Session, SessionProduct

PATIENTS = 300


# The refusals come first: they run before the shared fill below is set up.
@pytest.mark.postgres
@pytest.mark.django_db
def test_scale_fill_refuses_a_database_beyond_the_demo(monkeypatch):
    call_command("seed_demo", patients=3)
    monkeypatch.setattr(scale, "MAX_PATIENTS_BEFORE", 2)
    with pytest.raises(CommandError, match="already holds 3 patients"):
        call_command("seed_demo", scale="medium")
    assert Patient.objects.count() == 3


@pytest.mark.django_db
def test_scale_fill_refuses_sqlite(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "sqlite")
    with pytest.raises(CommandError, match="need PostgreSQL"):
        call_command("seed_demo", scale="large")


@pytest.fixture(scope="module")
def filled(django_db_setup, django_db_blocker):
    """One fill for the module's tests, in a transaction rolled back at the end; each test's
    own transaction is a savepoint inside it."""
    demo_patients = 3
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            call_command("seed_demo", patients=demo_patients, scale_patients=PATIENTS)
            yield demo_patients
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.mark.postgres
@pytest.mark.django_db
def test_scale_fill_has_the_shape_of_a_clinic(filled):
    patients = Patient.objects.count() - filled
    assert patients == PATIENTS
    assert Screening.objects.count() >= PATIENTS
    assert Consent.objects.filter(kind="mesotherapy").count() >= PATIENTS
    courses = Course.objects.count()
    sessions = Session.objects.count()
    assert 0.8 * PATIENTS <= courses <= 1.3 * PATIENTS
    assert 2.4 * PATIENTS <= sessions <= 3.6 * PATIENTS
    completed = Session.objects.filter(
        status="completed", practitioner__username__startswith="sede"
    )
    assert completed.count() > 0.75 * sessions
    # Every completed session is signed and has one to three product lines.
    lines = completed.annotate(lines=Count("products")).values_list("lines", flat=True)
    assert set(lines) <= {1, 2, 3} and min(lines) == 1
    assert not completed.filter(Q(signed_at__isnull=True) | Q(screening__isnull=True)).exists()
    assert Session.objects.filter(status__in=["scheduled", "confirmed"]).exists()
    assert Session.objects.filter(status__in=["no_show", "cancelled_patient"]).exists()
    # Six movements a patient: the lines' consumption, a receipt per lot, waste for the rest
    # (unless, as on so few patients, a fortnight's lots alone take more).
    fill_lots = Lot.objects.filter(lot_number__startswith="S")
    movements = StockMovement.objects.filter(lot__in=fill_lots).count()
    lines = SessionProduct.objects.filter(lot__in=fill_lots).count()
    assert lines > 5 * PATIENTS
    assert movements == max(6 * PATIENTS, lines + fill_lots.count())
    # Each line is paid for by its own consumption movement of the same lot and quantity.
    assert not SessionProduct.objects.exclude(
        movement__kind="consumption", movement__lot=F("lot"), movement__quantity=-F("quantity")
    ).exists()


@pytest.mark.postgres
@pytest.mark.django_db
def test_scale_fill_keeps_the_ledger_and_its_rollups(filled):
    assert ledger_discrepancies() == []
    assert month_discrepancies() == []
    assert rollup_discrepancies() == []
    call_command("verify_stock_ledger")
    # Never below zero at any time: each of the fill's lots' running balance, in the ledger's
    # order (the demo's lots are written through the services, in the order it calls them).
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT count(*) FROM (
                SELECT sum(m.quantity) OVER (PARTITION BY m.lot_id
                                             ORDER BY m.occurred_at, m.id) AS b
                FROM inventory_stockmovement AS m JOIN inventory_lot AS l ON l.id = m.lot_id
                WHERE l.lot_number LIKE 'S%') AS r
            WHERE b < 0""")
        assert cursor.fetchone()[0] == 0
    assert Lot.objects.filter(quantity_on_hand__gt=0, lot_number__startswith="S").exists()


@pytest.mark.postgres
@pytest.mark.django_db
def test_scale_fill_never_books_a_practitioner_or_room_twice(filled):
    assert scale.overlapping_sessions() == 0
    assert Session.objects.values("practitioner").distinct().count() >= 2


@pytest.mark.postgres
@pytest.mark.django_db
def test_scale_fill_writes_history_where_the_app_would(filled):
    assert Patient.history.filter(history_type="+").count() == Patient.objects.count()
    for model in (Screening, Consent, Course, Session, SessionProduct, Lot):
        missing = model.objects.exclude(pk__in=model.history.filter(history_type="+").values("id"))
        assert not missing.exists(), model.__name__
    completed = Session.objects.filter(status="completed")
    signed = Session.history.filter(
        history_type="~", status="completed", history_user__isnull=False
    )
    assert signed.count() == completed.count()
    assert signed.filter(history_date__isnull=True).count() == 0


@pytest.mark.postgres
@pytest.mark.django_db
def test_generated_patients_are_found_by_the_search_as_the_app_folds_names(filled):
    patient = Patient.objects.order_by("-id").first()
    assert patient.name_key == name_key(f"{patient.given_name} {patient.family_name}")
    mismatched = [
        p.pk
        for p in Patient.objects.all()
        if p.name_key != name_key(f"{p.given_name} {p.family_name}")
    ]
    assert mismatched == []
    # Typed in capitals, without accents: the admin's search finds the patient.
    query = name_key(patient.family_name).upper()
    assert Patient.objects.filter(patient_search_filter(query), pk=patient.pk).exists()
    assert Patient.objects.filter(patient_search_filter(str(patient.mobile_phone))).exists()
