"""Lists over tables that grow without end: no COUNT(*) of a whole large table, and searches an
index can serve (PostgreSQL)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clinic.admin import EstimatedCountPaginator
from patients.models import Patient
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.mark.postgres
def test_a_whole_large_table_is_numbered_from_the_planners_estimate(monkeypatch):
    PatientFactory.create_batch(3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE patients_patient")
    monkeypatch.setattr(EstimatedCountPaginator, "EXACT_BELOW", 1)

    with CaptureQueriesContext(connection) as queries:
        count = EstimatedCountPaginator(Patient.objects.all(), 50).count

    assert count == 3
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)


def test_a_filtered_list_is_counted_exactly(monkeypatch):
    PatientFactory.create_batch(2, given_name="Ana")
    PatientFactory(given_name="Rosa")
    monkeypatch.setattr(EstimatedCountPaginator, "EXACT_BELOW", 1)

    assert EstimatedCountPaginator(Patient.objects.filter(given_name="Ana"), 50).count == 2


def test_the_patient_list_makes_no_full_count(reception_client, django_assert_max_num_queries):
    PatientFactory.create_batch(5)
    with CaptureQueriesContext(connection) as queries:
        response = reception_client.get(reverse("admin:patients_patient_changelist"))

    assert response.status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) <= 1  # the paginator's (estimated on a large table), never a second


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("search", "index"),
    [
        ("garcia lop", "patient_name_key_trgm_idx"),
        ("ANA7@EXAMPLE.COM", "patient_email_upper_idx"),
        ("12/04/1985", "patient_dob_idx"),
    ],
)
def test_each_kind_of_patient_search_can_use_an_index(search, index):
    from patients.selectors import patient_search_filter

    PatientFactory.create_batch(3)
    queryset = Patient.objects.filter(patient_search_filter(search)).order_by()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = queryset.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert index in plan, plan


@pytest.mark.parametrize("cap", [1, 5000])
def test_a_name_search_gives_the_same_list_whichever_way_it_is_answered(monkeypatch, cap):
    from patients import selectors

    for given, family in [("Rosa", "Zapata Gil"), ("Ana", "Abad Gil"), ("Luis", "Gil Mora")]:
        PatientFactory(given_name=given, family_name=family)
    PatientFactory(given_name="Marta", family_name="Ruiz Pons")
    monkeypatch.setattr(selectors, "NAME_MATCHES_SORTED_APART", cap)

    found = selectors.patients_matching("gil")

    assert [p.given_name for p in found] == ["Ana", "Luis", "Rosa"]


def test_a_patients_page_in_the_admin_stays_within_twelve_queries(
    reception_client, django_assert_max_num_queries
):
    from tests.factories import ConsentFactory, ScreeningFactory

    patient = PatientFactory()
    ConsentFactory.create_batch(3, patient=patient)
    ScreeningFactory.create_batch(4, patient=patient)
    url = reverse("admin:patients_patient_change", args=[patient.pk])
    reception_client.get(url)  # the session and the user are read once per test client

    with django_assert_max_num_queries(12):
        assert reception_client.get(url).status_code == 200
