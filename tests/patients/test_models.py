from datetime import UTC, date, datetime

import pytest
import time_machine
from django.core.exceptions import ValidationError

from patients.models import Patient, Screening, name_key
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("José  Núñez", "jose nunez"),
        ("MARÍA-JOSÉ Güell", "maria-jose guell"),
        (" Çelik ", "celik"),
        ("Ana", "ana"),
    ],
)
def test_name_key_ignores_case_accents_and_spacing(text, key):
    assert name_key(text) == key


def test_save_keeps_the_name_key_in_step():
    patient = PatientFactory(given_name="Íñigo", family_name="Ibáñez")
    assert Patient.objects.get(pk=patient.pk).name_key == "inigo ibanez"
    patient.given_name = "Iñaki"
    patient.save(update_fields=["given_name"])
    assert Patient.objects.get(pk=patient.pk).name_key == "inaki ibanez"


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(1980, 2, 29), date(2026, 2, 28), 45),
        (date(1980, 2, 29), date(2026, 3, 1), 46),
        (date(2000, 12, 31), date(2026, 12, 30), 25),
    ],
)
def test_age_counts_whole_years(born, on, age):
    assert Patient(date_of_birth=born).age_on(on) == age


def test_phone_numbers_are_stored_in_e164():
    patient = PatientFactory(mobile_phone="+34 (612) 34-56-78")
    assert Patient.objects.filter(mobile_phone="+34612345678").get() == patient


@time_machine.travel(datetime(2026, 3, 1, 23, 30, tzinfo=UTC), tick=False)
def test_a_screening_is_dated_in_the_clinics_time_zone():
    """23:30 UTC on 1 March is already 2 March in Madrid."""
    screening = Screening(patient=PatientFactory(), recorded_by=UserFactory())
    assert screening.taken_on == date(2026, 3, 2)


@time_machine.travel(datetime(2026, 6, 1, 10, 0, tzinfo=UTC), tick=False)
def test_an_age_of_120_is_accepted_and_121_refused():
    Patient(
        given_name="A",
        family_name="B",
        date_of_birth=date(1905, 6, 2),
        sex="female",
        reminders_opt_out=True,
    ).full_clean()
    with pytest.raises(ValidationError, match="older than 120"):
        Patient(
            given_name="A",
            family_name="B",
            date_of_birth=date(1905, 6, 1),
            sex="female",
            reminders_opt_out=True,
        ).full_clean()
