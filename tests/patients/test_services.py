from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from patients import services
from patients.exceptions import LikelyDuplicatePatient
from patients.models import Consent, ConsentKind, Patient, Screening
from tests.concurrency import run_at_once
from tests.factories import ConsentFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


def new_patient(**overrides) -> Patient:
    fields = {
        "given_name": "Lucía",
        "family_name": "Núñez Gil",
        "date_of_birth": date(1980, 3, 2),
        "sex": "female",
        "email": "lucia@example.com",
        "mobile_phone": "612 345 678",
    }
    fields.update(overrides)
    return Patient(**fields)


@pytest.fixture
def actor():
    return UserFactory(username="rocio")


def test_register_stores_the_phone_in_e164_and_history_names_the_actor(actor):
    patient = services.patient_register(patient=new_patient(), actor=actor)
    patient.refresh_from_db()
    assert str(patient.mobile_phone) == "+34612345678"
    record = patient.history.get()
    assert record.history_type == "+"
    assert record.history_user == actor


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"mobile_phone": "12ab"}, "mobile_phone"),
        ({"email": "lucia-at-example"}, "email"),
        ({"date_of_birth": date.today() + timedelta(days=3)}, "date_of_birth"),
        ({"date_of_birth": date(1890, 1, 1)}, "date_of_birth"),
        ({"preferred_channel": "sms", "mobile_phone": ""}, "mobile_phone"),
        ({"preferred_channel": "email", "email": ""}, "email"),
    ],
)
def test_register_refuses_bad_input_and_writes_nothing(actor, overrides, field):
    with pytest.raises(ValidationError) as raised:
        services.patient_register(patient=new_patient(**overrides), actor=actor)
    assert field in raised.value.message_dict
    assert Patient.objects.count() == 0
    assert Patient.history.count() == 0


def test_opted_out_patients_need_no_contact_for_reminders(actor):
    services.patient_register(
        patient=new_patient(email="", preferred_channel="email", reminders_opt_out=True),
        actor=actor,
    )
    assert Patient.objects.count() == 1


def test_register_refuses_a_likely_duplicate_whatever_the_case_and_accents(actor):
    first = services.patient_register(patient=new_patient(), actor=actor)
    with pytest.raises(LikelyDuplicatePatient) as raised:
        services.patient_register(
            patient=new_patient(given_name=" lucia", family_name="NUNEZ  gil", email="x@y.es"),
            actor=actor,
        )
    assert raised.value.duplicates == [first]
    assert f"#{first.pk}" in raised.value.messages[0]
    assert Patient.objects.count() == 1


def test_register_accepts_a_confirmed_namesake(actor):
    services.patient_register(patient=new_patient(), actor=actor)
    services.patient_register(patient=new_patient(), actor=actor, confirm_duplicate=True)
    assert Patient.objects.count() == 2


def test_same_names_with_another_date_of_birth_is_not_a_duplicate(actor):
    services.patient_register(patient=new_patient(), actor=actor)
    services.patient_register(patient=new_patient(date_of_birth=date(1981, 3, 2)), actor=actor)
    assert Patient.objects.count() == 2


def test_update_keeps_the_old_values_in_history_with_actor_and_reason(actor):
    patient = services.patient_register(patient=new_patient(), actor=actor)
    editor = UserFactory(username="editor")
    patient.email = "lucia.nunez@example.com"
    services.patient_update(patient=patient, actor=editor, reason="Patient gave a new address")
    latest, first = patient.history.all()[:2]
    delta = latest.diff_against(first)
    assert [(c.field, c.old, c.new) for c in delta.changes] == [
        ("email", "lucia@example.com", "lucia.nunez@example.com")
    ]
    assert latest.history_user == editor
    assert latest.history_change_reason == "Patient gave a new address"


def test_update_into_a_duplicate_is_refused(actor):
    services.patient_register(patient=new_patient(), actor=actor)
    other = services.patient_register(patient=new_patient(given_name="Laura"), actor=actor)
    other.given_name = "Lucía"
    with pytest.raises(LikelyDuplicatePatient):
        services.patient_update(patient=other, actor=actor)
    assert Patient.objects.filter(given_name="Laura").exists()


def test_name_changes_update_the_search_key(actor):
    patient = services.patient_register(patient=new_patient(), actor=actor)
    patient.family_name = "Ibáñez"
    services.patient_update(patient=patient, actor=actor)
    patient.refresh_from_db()
    assert patient.name_key == "lucia ibanez"


def test_screening_record_names_who_recorded_it(actor):
    patient = PatientFactory()
    screening = services.screening_record(
        screening=Screening(patient=patient, anticoagulants=True), actor=actor
    )
    assert screening.recorded_by == actor
    assert screening.taken_on == timezone.localdate()
    assert screening.history.get().history_user == actor


def test_screening_in_the_future_is_refused(actor):
    with pytest.raises(ValidationError) as raised:
        services.screening_record(
            screening=Screening(
                patient=PatientFactory(), taken_on=timezone.localdate() + timedelta(days=1)
            ),
            actor=actor,
        )
    assert "taken_on" in raised.value.message_dict
    assert Screening.objects.count() == 0


def test_consent_record_and_withdraw(actor):
    consent = services.consent_record(
        consent=Consent(
            patient=PatientFactory(),
            kind=ConsentKind.PRP,
            form_version="v3",
            signed_at=timezone.now() - timedelta(days=2),
        ),
        actor=actor,
    )
    assert consent.recorded_by == actor
    services.consent_withdraw(consent=consent, actor=actor, reason="  Changed her mind ")
    consent.refresh_from_db()
    assert consent.is_withdrawn
    assert consent.withdrawal_reason == "Changed her mind"
    latest = consent.history.first()
    assert latest.history_user == actor
    assert latest.history_change_reason == "Withdrawn: Changed her mind"


def test_withdrawing_twice_is_refused(actor):
    consent = ConsentFactory()
    services.consent_withdraw(consent=consent, actor=actor, reason="asked")
    with pytest.raises(ValidationError, match="already withdrawn"):
        services.consent_withdraw(consent=consent, actor=actor, reason="again")


@pytest.mark.parametrize(
    ("reason", "when", "message"),
    [
        ("", None, "Say why"),
        ("asked", "before_signing", "before it was signed"),
        ("asked", "future", "future"),
    ],
)
def test_withdrawal_refusals_write_nothing(actor, reason, when, message):
    consent = ConsentFactory()
    withdrawn_at = {
        None: None,
        "before_signing": consent.signed_at - timedelta(minutes=1),
        "future": timezone.now() + timedelta(days=1),
    }[when]
    with pytest.raises(ValidationError, match=message):
        services.consent_withdraw(
            consent=consent, actor=actor, reason=reason, withdrawn_at=withdrawn_at
        )
    consent.refresh_from_db()
    assert consent.withdrawn_at is None
    assert consent.history.count() == 1


def test_database_refuses_a_withdrawal_before_signing():
    consent = ConsentFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.filter(pk=consent.pk).update(
            withdrawn_at=consent.signed_at - timedelta(days=1)
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_receptionists_registering_the_same_walk_in_at_once_write_one_record():
    """Both pass the duplicate check at the same moment without the identity lock."""
    assert_one_record_from(new_patient(), new_patient())


def assert_one_record_from(*spellings):
    actors = [UserFactory(username=f"desk{n}") for n in range(len(spellings))]
    results = run_at_once(
        *[
            lambda patient=patient, actor=actor: services.patient_register(
                patient=patient, actor=actor
            )
            for patient, actor in zip(spellings, actors, strict=True)
        ]
    )
    assert sorted(type(result).__name__ for result in results) == [
        "LikelyDuplicatePatient",
        "Patient",
    ]
    assert Patient.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_registrations_differing_only_in_accents_at_once_write_one_record():
    assert_one_record_from(
        new_patient(given_name="José", family_name="Núñez"),
        new_patient(given_name="jose", family_name="NUNEZ"),
    )


def test_confirmed_namesakes_can_be_edited_without_confirming_again(actor):
    services.patient_register(patient=new_patient(), actor=actor)
    namesake = services.patient_register(patient=new_patient(), actor=actor, confirm_duplicate=True)
    namesake.mobile_phone = "699 111 222"
    services.patient_update(patient=namesake, actor=actor)
    namesake.refresh_from_db()
    assert str(namesake.mobile_phone) == "+34699111222"
