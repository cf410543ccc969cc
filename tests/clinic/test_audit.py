"""The access log: logins, logouts and failed logins; every view and export of a patient's
record; every report export. Append-only in the application and, on PostgreSQL, in the
database. And the patient's data export for an access request."""

import json

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse

from clinic.accounts import user_set_roles
from clinic.models import AccessLog
from clinic.roles import MANAGER, PRACTITIONER, RECEPTION
from tests.factories import (
    ConsentFactory,
    PatientFactory,
    ProductFactory,
    ScreeningFactory,
    UserFactory,
    receive,
)

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


def entries(**filters):
    return list(
        AccessLog.objects.filter(**filters)
        .order_by("id")
        .values_list("username", "event", "patient_id", "address")
    )


def test_logins_logouts_and_failed_logins_are_logged_with_the_address(client):
    user_set_roles(user=UserFactory(username="nuria"), roles=[PRACTITIONER])

    client.post(reverse("login"), {"username": "nuria", "password": "nope"}, REMOTE_ADDR="10.0.0.7")
    client.post(
        reverse("login"), {"username": "nuria", "password": PASSWORD}, REMOTE_ADDR="10.0.0.7"
    )
    client.post(reverse("logout"), REMOTE_ADDR="10.0.0.7")

    assert entries() == [
        ("nuria", "login_failed", None, "10.0.0.7"),
        ("nuria", "login", None, "10.0.0.7"),
        ("nuria", "logout", None, "10.0.0.7"),
    ]
    assert "nope" not in str(list(AccessLog.objects.values()))


def as_role(role):
    client = Client()
    client.force_login(user_set_roles(user=UserFactory(username=role.lower()), roles=[role]))
    return client


def test_each_view_of_a_patients_record_is_logged_under_that_patient():
    practitioner_client, reception_client = as_role(PRACTITIONER), as_role(RECEPTION)
    patient = PatientFactory()
    other = PatientFactory()

    practitioner_client.get(reverse("patients:safety", args=[patient.pk]))
    reception_client.get(reverse("admin:patients_patient_change", args=[patient.pk]))
    reception_client.get(reverse("admin:patients_patient_history", args=[patient.pk]))
    reception_client.get(reverse("admin:patients_patient_changelist"))  # a list: no one record

    viewed = AccessLog.objects.filter(event="record_viewed")
    assert sorted(viewed.values_list("patient_id", flat=True)) == [patient.pk] * 3
    assert not viewed.filter(patient_id=other.pk).exists()
    assert set(viewed.values_list("what", flat=True)) == {
        reverse("patients:safety", args=[patient.pk]),
        reverse("admin:patients_patient_change", args=[patient.pk]),
        reverse("admin:patients_patient_history", args=[patient.pk]),
    }


def test_every_report_export_is_logged(manager_client):
    receive(ProductFactory(), quantity="3")

    response = manager_client.get(reverse("reports:stock_on_hand"), {"format": "csv"})

    assert response["Content-Disposition"].startswith("attachment")
    ((username, event, patient_id, _address),) = entries(event="report_exported")
    assert (event, patient_id) == ("report_exported", None) and username
    assert AccessLog.objects.get(event="report_exported").what.startswith(
        reverse("reports:stock_on_hand")
    )


def test_the_log_cannot_be_changed_or_deleted_through_the_application(client):
    entry = AccessLog.objects.create(username="someone", event="login")

    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AccessLog.objects.filter(pk=entry.pk).update(username="nobody")
    with pytest.raises(PermissionError):
        AccessLog.objects.all().delete()


@pytest.mark.postgres
def test_on_postgresql_the_database_itself_refuses_to_change_the_log():
    entry = AccessLog.objects.create(username="someone", event="login")

    for statement in (
        "UPDATE clinic_accesslog SET username = 'nobody' WHERE id = %s",
        "DELETE FROM clinic_accesslog WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [entry.pk])
    assert AccessLog.objects.get(pk=entry.pk).username == "someone"


def test_the_access_log_admin_is_read_only_even_for_a_superuser(client):
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    entry = AccessLog.objects.create(username="someone", event="login")

    assert client.get(reverse("admin:clinic_accesslog_changelist")).status_code == 200
    assert client.get(reverse("admin:clinic_accesslog_add")).status_code == 403
    assert client.post(reverse("admin:clinic_accesslog_delete", args=[entry.pk])).status_code == 403
    page = client.get(reverse("admin:clinic_accesslog_change", args=[entry.pk])).content.decode()
    assert 'name="_save"' not in page


def test_the_patients_data_export_holds_everything_and_is_logged(reception_client):
    patient = PatientFactory(given_name="Elena", notes="Prefers mornings")
    ScreeningFactory(patient=patient, anticoagulants=True)
    ConsentFactory(patient=patient)
    for who in (MANAGER,):
        user_set_roles(user=UserFactory(username=who.lower()), roles=[who])

    response = reception_client.get(reverse("patient_export", args=[patient.pk]))
    printed = reception_client.get(reverse("patient_export_print", args=[patient.pk]))

    assert response["Content-Disposition"] == f'attachment; filename="patient-{patient.pk}.json"'
    dossier = json.loads(response.content)
    assert dossier["patient"]["given_name"] == "Elena"
    assert dossier["patient"]["notes"] == "Prefers mornings"
    assert "name_key" not in dossier["patient"]
    assert [s["anticoagulants"] for s in dossier["screenings"]] == [True]
    assert len(dossier["consents"]) == 1 and dossier["courses"] == []
    page = printed.content.decode()
    assert "Prefers mornings" in page and "Given name" in page
    exports = AccessLog.objects.filter(event="record_exported", patient_id=patient.pk)
    assert exports.count() == 2
    # The first export is itself in the second one's copy of the log.
    assert "Patient record exported" in page
