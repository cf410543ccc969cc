"""The patient's links from a reminder, and what staff see of reminders: the admin and the
practitioner's pages."""

import re
from datetime import date, timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse

from clinic.accounts import user_set_roles
from clinic.roles import RECEPTION
from tests.factories import UserFactory
from treatments import services
from treatments.models import Reminder, SessionStatus
from treatments.reminder_policy import link_token

from .conftest import at

DAY = date(2026, 12, 3)


@pytest.fixture
def now():
    with time_machine.travel(at(DAY - timedelta(days=3), 10), tick=False) as traveller:
        yield traveller


@pytest.fixture
def session(now, course, practitioner, room, desk):
    return services.session_book(
        course=course,
        number=1,
        start=at(DAY, 11),
        end=at(DAY, 11, 45),
        practitioner=practitioner,
        room=room,
        actor=desk,
    )


def link(session, action, start=None):
    token = link_token(
        session_id=session.pk, session_start=start or session.scheduled_start, action=action
    )
    return reverse(f"appointment_{action}", args=[token])


def test_opening_the_confirm_link_shows_the_appointment_and_changes_nothing(client, session):
    response = client.get(link(session, "confirm"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "jueves 3 diciembre 2026" in page and "11:00" in page  # the patient's language
    assert "Confirmar mi cita" in page
    session.refresh_from_db()
    assert session.status == SessionStatus.SCHEDULED


def test_confirming_marks_the_session_confirmed_once(session):
    # A phone's in-app browser may keep no cookie: the signed link alone must do.
    client = Client(enforce_csrf_checks=True)
    url = link(session, "confirm")

    first = client.post(url)
    again = client.post(url)

    session.refresh_from_db()
    assert session.status == SessionStatus.CONFIRMED
    assert "su cita está confirmada" in first.content.decode().lower()
    assert "ya está confirmada" in again.content.decode()
    history = session.history.filter(status="confirmed")
    assert history.count() == 1
    assert history.get().history_change_reason == "Confirmado por el paciente desde un recordatorio"


def test_cancelling_cancels_the_session_and_its_reminders_and_tells_reception(
    client, session, django_capture_on_commit_callbacks
):
    user_set_roles(
        user=UserFactory(username="front", email="front@clinic.example"), roles=[RECEPTION]
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(link(session, "cancel"))

    session.refresh_from_db()
    assert response.status_code == 200
    assert session.status == SessionStatus.CANCELLED_BY_PATIENT
    assert set(session.reminders.values_list("status", flat=True)) == {"cancelled"}
    (notice,) = mail.outbox
    assert notice.to == ["front@clinic.example"]
    assert session.course.patient.full_name in notice.body and "11:00" in notice.body
    # Used again, the link changes nothing and says why.
    again = client.post(link(session, "cancel"))
    assert again.status_code == 400 and "ha sido cancelada" in again.content.decode()
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda url: url.replace("/confirm/", "/cancel/"), "no es válido"),
        (lambda url: url[:-3] + "xx/", "no es válido"),
        (lambda url: "/appointments/confirm/not-a-token/", "no es válido"),
    ],
    ids=["made for the other action", "signature altered", "garbage"],
)
def test_a_tampered_link_shows_a_clear_page_and_changes_nothing(client, session, tamper, message):
    response = client.post(tamper(link(session, "confirm")), HTTP_ACCEPT_LANGUAGE="es")

    assert response.status_code == 400 and message in response.content.decode()
    session.refresh_from_db()
    assert session.status == SessionStatus.SCHEDULED


def test_a_link_expires_when_the_appointment_begins(client, session, now):
    now.move_to(session.scheduled_start + timedelta(minutes=1))

    response = client.post(link(session, "cancel"), HTTP_ACCEPT_LANGUAGE="en")

    # In the patient's language, whatever the browser asks for.
    assert response.status_code == 400 and "ha caducado" in response.content.decode()
    session.refresh_from_db()
    assert session.status == SessionStatus.SCHEDULED


def test_a_link_for_the_old_time_of_a_moved_session_is_refused(client, session, desk):
    old = link(session, "cancel")
    services.session_move(session=session, start=at(DAY, 16), end=at(DAY, 16, 45), actor=desk)

    response = client.post(old)

    assert response.status_code == 400 and "ha sido cambiada" in response.content.decode()
    session.refresh_from_db()
    assert session.status == SessionStatus.SCHEDULED


def test_my_day_shows_each_sessions_reminders(client, session, practitioner, now):
    now.move_to(at(DAY, 9))
    Reminder.objects.filter(pk=session.reminders.first().pk).update(
        status="sent", sent_at=at(DAY - timedelta(days=1), 11)
    )
    Reminder.objects.filter(pk=session.reminders.last().pk).update(
        status="failed", last_error="Connection refused"
    )

    client.force_login(practitioner)
    page = client.get(reverse("treatments:my_day")).content.decode()

    assert "Email · sent 02/12 11:00" in page
    assert 'title="Connection refused">Email · failed' in page


def test_reception_sees_reminders_in_the_admin_and_resends_a_failed_one(
    # `now` first: the login must happen at the travelled time, or the session has long
    # been idle by then.
    now,
    reception_client,
    reception_user,
    session,
    django_assert_max_num_queries,
    django_capture_on_commit_callbacks,
):
    failed = session.reminders.first()
    Reminder.objects.filter(pk=failed.pk).update(status="failed", last_error="Connection refused")
    url = reverse("admin:treatments_reminder_changelist")

    with django_assert_max_num_queries(12):
        page = reception_client.get(url, {"status__exact": "failed"}).content.decode()
    assert "Connection refused" in page

    now.move_to(at(DAY - timedelta(days=2), 12))
    reception_client.force_login(reception_user)  # a day later: the old session timed out
    with django_capture_on_commit_callbacks(execute=True):
        response = reception_client.post(
            url,
            {"action": "resend", "_selected_action": [failed.pk, session.reminders.last().pk]},
            follow=True,
        )
    assert [str(m) for m in response.context["messages"]] == [
        "1 reminder(s) sent again.",
        "1 reminder(s) had not failed and were left alone.",
    ]
    failed.refresh_from_db()
    assert failed.status == "sent" and len(mail.outbox) == 1
    assert session.reminders.last().status == "pending"


def test_the_session_admin_lists_its_reminders(now, reception_client, session):
    page = reception_client.get(
        reverse("admin:treatments_session_change", args=[session.pk])
    ).content.decode()

    assert len(re.findall(r'<td class="field-status">\s*<p>Pending</p>', page)) == 2
