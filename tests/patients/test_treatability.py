"""Every rule of "may this patient be treated?" (docs/safety-rules.md)."""

from datetime import datetime, time, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from clinic.substances import SubstanceCategory as S
from patients.models import ConsentKind
from patients.selectors import treatability
from tests.factories import ConsentFactory, PatientFactory, ScreeningFactory

pytestmark = pytest.mark.django_db

MESO = [S.HYALURONIC_ACID, S.VITAMIN_COCKTAIL, S.ANAESTHETIC]
TODAY = timezone.localdate


def codes(findings):
    return {finding.code for finding in findings}


@pytest.fixture
def consented():
    """Both treatment consents, signed a month ago; no screening yet."""
    patient = PatientFactory()
    ConsentFactory(patient=patient, kind=ConsentKind.MESOTHERAPY)
    ConsentFactory(patient=patient, kind=ConsentKind.PRP)
    return patient


@pytest.fixture
def patient(consented):
    """Cleared for mesotherapy and PRP: both consents, a clean screening yesterday."""
    ScreeningFactory(patient=consented)
    return consented


def answered(patient, **answers):
    ScreeningFactory(patient=patient, taken_on=TODAY(), **answers)


def test_a_cleared_patient_may_be_treated_with_no_warning(patient):
    result = treatability(patient=patient, categories=[*MESO, S.PRP], on=TODAY())
    assert result.may_treat
    assert result.hard_stops == [] and result.warnings == []


def test_missing_mesotherapy_consent_is_a_hard_stop():
    patient = PatientFactory()
    ScreeningFactory(patient=patient)
    result = treatability(patient=patient, categories=MESO, on=TODAY())
    assert codes(result.hard_stops) == {"consent_mesotherapy"}
    assert "consent" in result.hard_stops[0].message


def test_prp_needs_the_prp_consent_not_only_the_mesotherapy_one():
    patient = PatientFactory()
    ConsentFactory(patient=patient, kind=ConsentKind.MESOTHERAPY)
    ScreeningFactory(patient=patient)
    assert treatability(patient=patient, categories=MESO, on=TODAY()).may_treat
    result = treatability(patient=patient, categories=[S.PRP], on=TODAY())
    assert codes(result.hard_stops) == {"consent_prp"}


def test_prp_alone_does_not_need_the_mesotherapy_consent():
    patient = PatientFactory()
    ConsentFactory(patient=patient, kind=ConsentKind.PRP)
    ScreeningFactory(patient=patient)
    assert treatability(patient=patient, categories=[S.PRP], on=TODAY()).may_treat


def test_a_withdrawn_consent_no_longer_counts(patient):
    consent = patient.consents.get(kind=ConsentKind.MESOTHERAPY)
    consent.withdrawn_at = timezone.now() - timedelta(days=1)
    consent.save()
    result = treatability(patient=patient, categories=MESO, on=TODAY())
    assert codes(result.hard_stops) == {"consent_mesotherapy"}


def test_a_consent_withdrawn_later_still_counted_on_an_earlier_day(patient):
    consent = patient.consents.get(kind=ConsentKind.MESOTHERAPY)
    consent.signed_at = timezone.now() - timedelta(days=30)
    consent.withdrawn_at = timezone.now() - timedelta(days=1)
    consent.save()
    earlier = TODAY() - timedelta(days=5)
    ScreeningFactory(patient=patient, taken_on=earlier)
    assert treatability(patient=patient, categories=MESO, on=earlier).may_treat


def test_a_consent_signed_after_the_day_does_not_count():
    patient = PatientFactory()
    ConsentFactory(patient=patient, signed_at=timezone.now())
    ScreeningFactory(patient=patient, taken_on=TODAY() - timedelta(days=3))
    result = treatability(patient=patient, categories=MESO, on=TODAY() - timedelta(days=2))
    assert codes(result.hard_stops) == {"consent_mesotherapy"}


def test_no_screening_is_a_hard_stop():
    patient = PatientFactory()
    ConsentFactory(patient=patient)
    result = treatability(patient=patient, categories=MESO, on=TODAY())
    assert codes(result.hard_stops) == {"no_screening"}
    assert result.screening is None


def test_a_screening_answered_after_the_day_does_not_count():
    patient = PatientFactory()
    ConsentFactory(patient=patient)
    ScreeningFactory(patient=patient, taken_on=TODAY())
    result = treatability(patient=patient, categories=MESO, on=TODAY() - timedelta(days=1))
    assert codes(result.hard_stops) == {"no_screening"}


@override_settings(PATIENTS_SCREENING_MAX_AGE_DAYS=30)
def test_a_screening_older_than_the_limit_is_a_hard_stop():
    patient = PatientFactory()
    ConsentFactory(patient=patient, signed_at=timezone.now() - timedelta(days=90))
    ScreeningFactory(patient=patient, taken_on=TODAY() - timedelta(days=31))
    result = treatability(patient=patient, categories=MESO, on=TODAY())
    assert codes(result.hard_stops) == {"stale_screening"}
    assert "31 days" in result.hard_stops[0].message


@override_settings(PATIENTS_SCREENING_MAX_AGE_DAYS=30)
def test_a_screening_exactly_at_the_limit_still_counts():
    patient = PatientFactory()
    ConsentFactory(patient=patient, signed_at=timezone.now() - timedelta(days=90))
    ScreeningFactory(patient=patient, taken_on=TODAY() - timedelta(days=30))
    assert treatability(patient=patient, categories=MESO, on=TODAY()).may_treat


def test_the_latest_screening_is_the_one_that_counts(patient):
    answered(patient, pregnant_or_breastfeeding=True)
    assert codes(treatability(patient=patient, categories=MESO, on=TODAY()).hard_stops) == {
        "pregnancy"
    }
    ScreeningFactory(
        patient=patient, taken_on=TODAY(), recorded_at=timezone.now() + timedelta(minutes=5)
    )
    assert treatability(patient=patient, categories=MESO, on=TODAY()).may_treat


@pytest.mark.parametrize(
    ("answer", "code"),
    [("pregnant_or_breastfeeding", "pregnancy"), ("active_infection_at_site", "active_infection")],
)
def test_absolute_contraindications_stop_every_treatment(patient, answer, code):
    answered(patient, **{answer: True})
    for categories in (MESO, [S.PRP], [S.HYALURONIC_ACID]):
        result = treatability(patient=patient, categories=categories, on=TODAY())
        assert code in codes(result.hard_stops)


@pytest.mark.parametrize(
    ("answer", "stop_code", "warning_code"),
    [
        ("bleeding_disorder", "prp_bleeding_disorder", "bleeding_disorder"),
        ("anaemia", "prp_anaemia", "anaemia"),
    ],
)
def test_blood_conditions_stop_prp_and_warn_otherwise(patient, answer, stop_code, warning_code):
    answered(patient, **{answer: True})
    prp = treatability(patient=patient, categories=[S.PRP], on=TODAY())
    assert codes(prp.hard_stops) == {stop_code}
    meso = treatability(patient=patient, categories=MESO, on=TODAY())
    assert meso.may_treat
    assert codes(meso.warnings) == {warning_code}


@pytest.mark.parametrize(
    ("answer", "planned", "code"),
    [
        ("allergy_hyaluronic_acid", [S.HYALURONIC_ACID], "allergy_hyaluronic_acid"),
        ("allergy_hyaluronic_acid", [S.VITAMIN_COCKTAIL], "allergy_hyaluronic_acid"),
        ("allergy_vitamins", [S.VITAMIN_COCKTAIL], "allergy_vitamins"),
        ("allergy_anaesthetic", [S.ANAESTHETIC], "allergy_anaesthetic"),
    ],
)
def test_an_allergy_to_a_planned_substance_is_a_hard_stop(patient, answer, planned, code):
    answered(patient, **{answer: True})
    result = treatability(patient=patient, categories=planned, on=TODAY())
    assert codes(result.hard_stops) == {code}


def test_an_allergy_to_a_substance_not_planned_is_a_warning(patient):
    answered(patient, allergy_anaesthetic=True)
    result = treatability(patient=patient, categories=[S.PRP], on=TODAY())
    assert result.may_treat
    assert codes(result.warnings) == {"allergy"}
    assert "lidocaine" in result.warnings[0].message


def test_a_free_text_allergy_is_a_warning_naming_it(patient):
    answered(patient, allergies="latex")
    result = treatability(patient=patient, categories=MESO, on=TODAY())
    assert result.may_treat
    assert codes(result.warnings) == {"allergy"}
    assert "latex" in result.warnings[0].message


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("anticoagulants", "anticoagulants"),
        ("nsaids_last_48h", "nsaids"),
        ("vaccination_last_7_days", "recent_vaccination"),
        ("autoimmune_disease", "autoimmune"),
        ("keloid_tendency", "keloid"),
        ("cancer_under_treatment", "cancer"),
        ("immunosuppression", "immunosuppression"),
        ("diabetes", "diabetes"),
    ],
)
def test_warnings_do_not_stop_treatment(patient, answer, code):
    answered(patient, **{answer: True})
    result = treatability(patient=patient, categories=[*MESO, S.PRP], on=TODAY())
    assert result.may_treat
    assert codes(result.warnings) == {code}
    assert result.warnings[0].message


def test_nsaids_count_until_two_days_after_the_answer(consented):
    """Answered on day D (at any hour) about the last 48 hours: still a warning on D + 2."""
    patient = consented
    ScreeningFactory(patient=patient, taken_on=TODAY() - timedelta(days=3), nsaids_last_48h=True)
    on_d2 = treatability(patient=patient, categories=MESO, on=TODAY() - timedelta(days=1))
    assert codes(on_d2.warnings) == {"nsaids"}
    on_d3 = treatability(patient=patient, categories=MESO, on=TODAY())
    assert codes(on_d3.warnings) == {"ask_day_of_questions"}


def test_a_vaccination_counts_until_seven_days_after_the_answer(consented):
    patient = consented
    ScreeningFactory(
        patient=patient, taken_on=TODAY() - timedelta(days=8), vaccination_last_7_days=True
    )
    on_d7 = treatability(patient=patient, categories=MESO, on=TODAY() - timedelta(days=1))
    assert "recent_vaccination" in codes(on_d7.warnings)
    on_d8 = treatability(patient=patient, categories=MESO, on=TODAY())
    assert "recent_vaccination" not in codes(on_d8.warnings)


def test_answers_older_than_two_days_ask_for_the_day_of_questions(patient):
    """Yesterday's screening is recent enough; one from three days ago is not."""
    assert treatability(patient=patient, categories=MESO, on=TODAY()).warnings == []
    later = treatability(patient=patient, categories=MESO, on=TODAY() + timedelta(days=2))
    [finding] = later.warnings
    assert finding.code == "ask_day_of_questions"
    assert (TODAY() - timedelta(days=1)).strftime("%d/%m/%Y") in finding.message


def test_unknown_substance_categories_are_refused(patient):
    with pytest.raises(ValueError, match="Unknown substance categories: PRP"):
        treatability(patient=patient, categories=["PRP"], on=TODAY())


def test_consents_count_when_signed_by_the_end_of_the_day():
    patient = PatientFactory()
    evening = timezone.make_aware(datetime.combine(TODAY(), time(20, 0)))
    ConsentFactory(patient=patient, signed_at=min(evening, timezone.now()))
    ScreeningFactory(patient=patient)
    assert treatability(patient=patient, categories=MESO, on=TODAY()).may_treat
