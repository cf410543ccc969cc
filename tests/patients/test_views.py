from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from patients.models import ConsentKind
from tests.factories import ConsentFactory, PatientFactory, ScreeningFactory

pytestmark = pytest.mark.django_db

SEARCH = reverse("patients:search")


def _fill(count: int, **patient_fields):
    for _ in range(count):
        patient = PatientFactory(**patient_fields)
        ConsentFactory(patient=patient)
        ScreeningFactory(patient=patient)


def test_search_lists_matching_patients_with_their_flags(practitioner_client):
    patient = PatientFactory(given_name="Lucía", family_name="Núñez")
    ConsentFactory(
        patient=patient, kind=ConsentKind.PRP, withdrawn_at=timezone.now() - timedelta(days=1)
    )
    PatientFactory(given_name="Pedro", family_name="Gil")
    response = practitioner_client.get(SEARCH, {"q": "nunez"})
    page = response.content.decode()
    assert reverse("patients:safety", args=[patient.pk]) in page
    assert "Pedro" not in page
    assert 'class="consent-withdrawn me-2" title="PRP treatment: Withdrawn">✖ PRP<' in page


def test_search_without_a_query_lists_nobody(practitioner_client):
    PatientFactory()
    response = practitioner_client.get(SEARCH)
    assert response.context["patients"] is None


def test_search_queries_do_not_grow_with_results(
    practitioner_client, django_assert_max_num_queries
):
    _fill(2, family_name="Ruiz")
    practitioner_client.get(SEARCH, {"q": "ruiz"})
    with django_assert_max_num_queries(8) as few:
        practitioner_client.get(SEARCH, {"q": "ruiz"})
    _fill(20, family_name="Ruiz")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = practitioner_client.get(SEARCH, {"q": "ruiz"})
    assert len(response.context["patients"]) == 22


def test_safety_page_shows_hard_stops_and_warnings(
    practitioner_client, django_assert_max_num_queries
):
    patient = PatientFactory(given_name="Elena")
    ConsentFactory(patient=patient)
    ScreeningFactory(patient=patient, active_infection_at_site=True, keloid_tendency=True)
    with django_assert_max_num_queries(15):  # one of them writes the access log
        response = practitioner_client.get(reverse("patients:safety", args=[patient.pk]))
    page = response.content.decode()
    assert "Elena" in page
    assert 'data-code="active_infection"' in page
    assert 'data-code="keloid"' in page
    assert 'data-code="consent_prp"' in page
    assert "must not be treated" in page


def test_safety_page_of_an_unknown_patient_is_404(practitioner_client):
    assert practitioner_client.get(reverse("patients:safety", args=[999])).status_code == 404


def test_records_report_counts_what_needs_fixing(manager_client, django_assert_max_num_queries):
    ready = PatientFactory()
    ConsentFactory(patient=ready)
    ScreeningFactory(patient=ready)
    withdrawn = PatientFactory(reminders_opt_out=True)
    ConsentFactory(patient=withdrawn, withdrawn_at=timezone.now() - timedelta(hours=1))
    PatientFactory(preferred_channel="sms", mobile_phone="")
    manager_client.get(reverse("reports:patient_records"))
    # session, user, the user's and the groups' permissions, then the one aggregate
    with django_assert_max_num_queries(5):
        response = manager_client.get(reverse("reports:patient_records"))
    readiness = response.context["readiness"]
    assert readiness.patients == 3
    assert readiness.without_treatment_consent == 2
    assert readiness.with_withdrawn_consent == 1
    assert readiness.without_current_screening == 2
    assert readiness.opted_out_of_reminders == 1
    assert readiness.missing_reminder_contact == 1


def test_pages_speak_spanish_to_a_spanish_browser(practitioner_client):
    patient = PatientFactory()
    response = practitioner_client.get(
        reverse("patients:safety", args=[patient.pk]), HTTP_ACCEPT_LANGUAGE="es"
    )
    page = response.content.decode()
    assert "No consta ningún cribado" in page
    assert "No hay consentimiento en vigor para «Tratamiento de mesoterapia»" in page


def test_practitioner_records_a_screening_starting_from_the_last_answers(
    practitioner_client, practitioner_user
):
    patient = PatientFactory()
    ScreeningFactory(
        patient=patient,
        taken_on=timezone.localdate() - timedelta(days=20),
        allergy_anaesthetic=True,
        allergies="latex",
    )
    url = reverse("patients:screening", args=[patient.pk])
    form = practitioner_client.get(url).context["form"]
    assert form.initial["allergy_anaesthetic"] is True
    assert form.initial["allergies"] == "latex"
    response = practitioner_client.post(
        url,
        {
            "allergy_anaesthetic": "on",
            "allergies": "latex",
            "nsaids_last_48h": "on",
        },
    )
    assert response.status_code == 302
    latest = patient.screenings.first()
    assert latest.taken_on == timezone.localdate()
    assert latest.recorded_by == practitioner_user
    assert latest.nsaids_last_48h and latest.allergy_anaesthetic
    assert latest.history.get().history_user == practitioner_user


def test_managers_cannot_record_screenings(manager_client):
    patient = PatientFactory()
    url = reverse("patients:screening", args=[patient.pk])
    assert manager_client.post(url, {}).status_code == 403
