from datetime import date, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from patients.models import Consent, ConsentKind, Patient, Screening
from tests.factories import ConsentFactory, PatientFactory, ScreeningFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:patients_patient_changelist")
ADD = reverse("admin:patients_patient_add")


def inline_management(prefix: str, total: int = 1, initial: int = 0) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def patient_form(**overrides) -> dict:
    data = {
        "given_name": "Carmen",
        "family_name": "Ruiz Blanco",
        "date_of_birth": "1979-05-20",
        "sex": "female",
        "email": "carmen@example.com",
        "mobile_phone": "+34 612 00 11 22",
        "preferred_channel": "email",
        "preferred_language": "es",
        "address_line": "",
        "postal_code": "",
        "city": "",
        "fitzpatrick_type": "III",
        "glogau_type": "II",
        "notes": "",
        **inline_management("consents"),
        **inline_management("screenings"),
    }
    data.update(overrides)
    return data


def test_reception_registers_a_patient_with_screening_and_consent(reception_client, reception_user):
    today = timezone.localdate()
    # 09:00, or the current minute before then: later today would be in the future, and refused.
    signed = min(time(9), timezone.localtime().time())
    response = reception_client.post(
        ADD,
        patient_form(
            **{
                "consents-0-kind": ConsentKind.MESOTHERAPY,
                "consents-0-form_version": "2025-01",
                "consents-0-signed_at_0": today.strftime("%Y-%m-%d"),
                "consents-0-signed_at_1": signed.strftime("%H:%M:00"),
                "screenings-0-taken_on": today.isoformat(),
                "screenings-0-anticoagulants": "on",
                "screenings-0-reviewed_with_patient": "on",
            }
        ),
    )
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    patient = Patient.objects.get()
    assert str(patient.mobile_phone) == "+34612001122"
    assert patient.history.get().history_user == reception_user
    screening = Screening.objects.get()
    assert screening.anticoagulants and screening.recorded_by == reception_user
    consent = Consent.objects.get()
    assert consent.recorded_by == reception_user and consent.history.get().history_user


def test_an_untouched_screening_form_records_nothing(reception_client):
    today = timezone.localdate().isoformat()
    response = reception_client.post(
        ADD,
        patient_form(
            **{
                "screenings-0-taken_on": today,
                "initial-screenings-0-taken_on": today,
            }
        ),
    )
    assert response.status_code == 302
    assert Screening.objects.count() == 0


def test_a_screening_with_every_answer_no_is_recorded_when_reviewed(reception_client):
    response = reception_client.post(
        ADD,
        patient_form(
            **{
                "screenings-0-taken_on": timezone.localdate().isoformat(),
                "screenings-0-reviewed_with_patient": "on",
            }
        ),
    )
    assert response.status_code == 302
    assert Screening.objects.get().anticoagulants is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mobile_phone": "555-abc"}, "valid phone number"),
        ({"email": "carmen.example.com"}, "valid email"),
        ({"date_of_birth": (date.today() + timedelta(days=1)).isoformat()}, "in the future"),
        ({"date_of_birth": "1899-01-01"}, "older than 120 years"),
    ],
)
def test_bad_input_is_shown_on_the_form_and_nothing_is_written(
    reception_client, overrides, message
):
    response = reception_client.post(ADD, patient_form(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Patient.objects.count() == 0


def test_a_likely_duplicate_needs_confirmation(reception_client):
    existing = PatientFactory(
        given_name="Carmen", family_name="Ruiz Blanco", date_of_birth=date(1979, 5, 20)
    )
    response = reception_client.post(ADD, patient_form(given_name="CARMEN"))
    assert response.status_code == 200
    assert f"#{existing.pk}" in response.content.decode()
    assert Patient.objects.count() == 1

    response = reception_client.post(ADD, patient_form(confirm_duplicate="on"))
    assert response.status_code == 302
    assert Patient.objects.count() == 2


def test_editing_a_patient_records_the_change_and_shows_it_in_history(
    reception_client, reception_user
):
    patient = PatientFactory(email="old@example.com")
    url = reverse("admin:patients_patient_change", args=[patient.pk])
    data = patient_form(
        given_name=patient.given_name,
        family_name=patient.family_name,
        date_of_birth=patient.date_of_birth.isoformat(),
        email="new@example.com",
        mobile_phone=str(patient.mobile_phone),
    )
    assert reception_client.post(url, data).status_code == 302
    assert patient.history.first().history_user == reception_user
    history = reception_client.get(reverse("admin:patients_patient_history", args=[patient.pk]))
    page = history.content.decode()
    assert "old@example.com" in page and "new@example.com" in page
    assert reception_user.get_username() in page


def test_changelist_shows_consents_at_a_glance(reception_client):
    patient = PatientFactory(family_name="Withdrawn")
    ConsentFactory(
        patient=patient,
        kind=ConsentKind.MESOTHERAPY,
        withdrawn_at=timezone.now() - timedelta(hours=1),
    )
    page = reception_client.get(CHANGELIST).content.decode()
    assert 'class="consent-withdrawn" title="Mesotherapy treatment: Withdrawn"' in page
    assert 'class="consent-missing" title="PRP treatment: Not signed"' in page


def _fill(count: int):
    for _ in range(count):
        patient = PatientFactory()
        ConsentFactory(patient=patient)
        ConsentFactory(patient=patient, kind=ConsentKind.PRP)
        ScreeningFactory(patient=patient)


@pytest.mark.parametrize("query", ["", "?q=ana", "?consent=missing", "?screening=stale"])
def test_changelist_queries_do_not_grow_with_rows(
    reception_client, django_assert_max_num_queries, query
):
    _fill(3)
    reception_client.get(CHANGELIST + query)  # session and permission caches
    with django_assert_max_num_queries(12) as few:
        assert reception_client.get(CHANGELIST + query).status_code == 200
    _fill(30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert reception_client.get(CHANGELIST + query).status_code == 200


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("lucia", {"Lucía"}),
        ("NUÑEZ", {"Lucía"}),
        ("612 345 678", {"Lucía"}),
        ("+34612345678", {"Lucía"}),
        ("02/03/1980", {"Lucía"}),
        ("1980-03-02", {"Lucía"}),
        ("LUCIA@example.com", {"Lucía"}),
        ("pedro", {"Pedro"}),
        ("garcía", {"Pedro"}),
        ("nobody", set()),
    ],
)
def test_search_by_name_phone_email_and_date_of_birth(reception_client, query, expected):
    PatientFactory(
        given_name="Lucía",
        family_name="Núñez",
        date_of_birth=date(1980, 3, 2),
        email="lucia@example.com",
        mobile_phone="+34612345678",
    )
    PatientFactory(
        given_name="Pedro",
        family_name="García",
        date_of_birth=date(1970, 1, 1),
        email="pedro@example.com",
        mobile_phone="+34699999999",
    )
    response = reception_client.get(CHANGELIST, {"q": query})
    found = {p.given_name for p in response.context["cl"].result_list}
    assert found == expected


@pytest.mark.parametrize(
    ("filter_query", "expected"),
    [
        ("consent=missing", {"NoConsent"}),
        ("consent=in_force", {"Ready", "Stale"}),
        ("screening=stale", {"NoConsent", "Stale"}),
        ("screening=current", {"Ready"}),
    ],
)
def test_safety_filters(reception_client, filter_query, expected):
    ready = PatientFactory(family_name="Ready")
    ConsentFactory(patient=ready)
    ScreeningFactory(patient=ready)
    stale = PatientFactory(family_name="Stale")
    ConsentFactory(patient=stale)
    ScreeningFactory(patient=stale, taken_on=timezone.localdate() - timedelta(days=400))
    PatientFactory(family_name="NoConsent")
    response = reception_client.get(CHANGELIST + "?" + filter_query)
    assert {p.family_name for p in response.context["cl"].result_list} == expected


def test_patient_page_shows_the_safety_summary(reception_client, django_assert_max_num_queries):
    patient = PatientFactory()
    ConsentFactory(patient=patient)
    ScreeningFactory(patient=patient, pregnant_or_breastfeeding=True, anticoagulants=True)
    url = reverse("admin:patients_patient_change", args=[patient.pk])
    with django_assert_max_num_queries(25):
        page = reception_client.get(url).content.decode()
    assert "must not be treated" in page
    assert 'data-code="pregnancy"' in page
    assert 'data-code="anticoagulants"' in page
    assert 'data-code="consent_prp"' in page


def test_existing_screenings_and_consents_are_read_only_on_the_patient_page(reception_client):
    patient = PatientFactory()
    consent = ConsentFactory(patient=patient, form_version="v-old")
    url = reverse("admin:patients_patient_change", args=[patient.pk])
    page = reception_client.get(url).content.decode()
    assert 'name="consents-0-form_version"' not in page  # shown, not editable
    assert "v-old" in page
    assert reverse("admin:patients_consent_withdraw", args=[consent.pk]) in page


def test_reception_withdraws_a_consent_with_a_reason(reception_client, reception_user):
    consent = ConsentFactory()
    url = reverse("admin:patients_consent_withdraw", args=[consent.pk])
    assert reception_client.get(url).status_code == 200
    now = timezone.localtime()
    response = reception_client.post(
        url,
        {
            "withdrawn_at": now.strftime("%Y-%m-%d %H:%M:%S"),
            "reason": "Patient asked by phone",
        },
    )
    assert response.status_code == 302
    consent.refresh_from_db()
    assert consent.is_withdrawn and consent.withdrawal_reason == "Patient asked by phone"
    assert consent.history.first().history_user == reception_user


def test_withdrawing_needs_a_reason(reception_client):
    consent = ConsentFactory()
    url = reverse("admin:patients_consent_withdraw", args=[consent.pk])
    response = reception_client.post(url, {"withdrawn_at": "", "reason": ""})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    consent.refresh_from_db()
    assert not consent.is_withdrawn


def test_withdrawing_an_already_withdrawn_consent_shows_why(reception_client):
    consent = ConsentFactory(withdrawn_at=timezone.now() - timedelta(days=1), withdrawal_reason="x")
    url = reverse("admin:patients_consent_withdraw", args=[consent.pk])
    response = reception_client.post(
        url,
        {
            "withdrawn_at": timezone.localtime().strftime("%Y-%m-%d %H:%M:%S"),
            "reason": "again",
        },
    )
    assert response.status_code == 200
    assert "already withdrawn" in response.content.decode()


def test_practitioners_cannot_withdraw_consents(practitioner_client):
    consent = ConsentFactory()
    url = reverse("admin:patients_consent_withdraw", args=[consent.pk])
    response = practitioner_client.post(url, {"reason": "x"})
    assert response.status_code in (302, 403)
    consent.refresh_from_db()
    assert not consent.is_withdrawn


def test_patient_page_queries_do_not_grow_with_screenings_and_consents(
    reception_client, django_assert_max_num_queries
):
    patient = PatientFactory()
    ConsentFactory(patient=patient)
    ScreeningFactory(patient=patient)
    url = reverse("admin:patients_patient_change", args=[patient.pk])
    reception_client.get(url)
    with django_assert_max_num_queries(25) as few:
        reception_client.get(url)
    for days in range(2, 12):
        ScreeningFactory(patient=patient, taken_on=timezone.localdate() - timedelta(days=days))
        ConsentFactory(patient=patient, kind=ConsentKind.PHOTOGRAPHY)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert reception_client.get(url).status_code == 200


def test_consent_changelist_queries_do_not_grow_with_rows(
    reception_client, django_assert_max_num_queries
):
    url = reverse("admin:patients_consent_changelist")
    ConsentFactory()
    reception_client.get(url)
    with django_assert_max_num_queries(12) as few:
        reception_client.get(url)
    for _ in range(20):
        ConsentFactory()
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert reception_client.get(url).status_code == 200


def test_history_cannot_be_used_to_revert_a_withdrawn_consent(reception_client):
    consent = ConsentFactory()
    from patients import services as patient_services

    patient_services.consent_withdraw(consent=consent, actor=consent.recorded_by, reason="asked")
    before = consent.history.order_by("history_date").first()
    url = reverse("admin:patients_consent_simple_history", args=[consent.pk, before.history_id])
    response = reception_client.post(url, {})
    assert response.status_code in (302, 403)
    consent.refresh_from_db()
    assert consent.is_withdrawn


def test_a_new_screening_on_the_patient_page_starts_from_the_last_answers(reception_client):
    patient = PatientFactory()
    ScreeningFactory(patient=patient, keloid_tendency=True, allergies="nickel")
    response = reception_client.get(reverse("admin:patients_patient_change", args=[patient.pk]))
    formset = next(
        f for f in response.context["inline_admin_formsets"] if f.formset.model is Screening
    ).formset
    extra = formset.forms[-1]
    assert extra.initial["keloid_tendency"] is True
    assert extra.initial["allergies"] == "nickel"
