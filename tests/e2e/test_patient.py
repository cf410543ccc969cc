"""The patient confirms from the reminder: the email goes through a real SMTP server, the link in
it opens in the browser, and the button confirms the session."""

import re
import socket
import threading
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone
from playwright.sync_api import expect

from clinic.accounts import user_set_roles
from clinic.roles import PRACTITIONER
from patients.models import ConsentKind
from tests.factories import ConsentFactory, PatientFactory, ProtocolFactory, RoomFactory
from tests.factories import UserFactory as StaffFactory
from treatments import services
from treatments.models import ReminderStatus, SessionStatus
from treatments.services import reminders as reminder_services

pytestmark = pytest.mark.django_db(transaction=True)


class Mailbox:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def mailbox(settings):
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = controller.hostname, controller.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    # The sender keeps one SMTP connection per process; none may outlive this server.
    reminder_services._close_email_connection()
    yield box
    reminder_services._close_email_connection()
    controller.stop()


def test_patient(page, live_server, settings, mailbox, django_capture_on_commit_callbacks, shots):
    settings.CLINIC_BASE_URL = live_server.url
    settings.REMINDER_QUIET_HOURS = "00:00-00:00"  # whatever the hour the test runs at
    desk = StaffFactory(username="desk")
    practitioner = user_set_roles(
        user=StaffFactory(username="dr.ferrer", first_name="Marc", last_name="Ferrer"),
        roles=[PRACTITIONER],
    )
    patient = PatientFactory(
        given_name="Irene",
        family_name="Puig Soler",
        email="irene.puig@example.com",
        preferred_channel="email",
        preferred_language="en",
    )
    ConsentFactory(patient=patient, kind=ConsentKind.MESOTHERAPY)
    course = services.course_plan(
        patient=patient,
        protocol=ProtocolFactory(),
        lead_practitioner=practitioner,
        start_date=timezone.localdate(),
        actor=desk,
    )
    # Booked 30 hours ahead: the 48-hour email is already late, so it is due at once.
    start = (timezone.now() + timedelta(hours=30)).replace(second=0, microsecond=0)
    session = services.session_book(
        course=course,
        number=1,
        start=start,
        end=start + timedelta(minutes=45),
        practitioner=practitioner,
        room=RoomFactory(name="Cabina 2"),
        actor=desk,
    )
    due = session.reminders.get(status=ReminderStatus.PENDING, due_at__lte=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        dispatched = reminder_services.reminders_dispatch()
    assert dispatched.handed_out == [due.pk]
    due.refresh_from_db()
    assert due.status == ReminderStatus.SENT and due.recipient == "irene.puig@example.com"
    [email] = mailbox.messages
    assert email["To"] == "irene.puig@example.com"
    assert email["Message-ID"].startswith(f"<reminder-{due.pk}@")
    text = email.get_body(preferencelist=("plain",)).get_content()
    assert "Puig" not in text  # no family name in a message someone else may read
    [confirm_url] = re.findall(r"https?://\S+/appointments/confirm/\S+/", text)
    assert confirm_url.startswith(live_server.url)

    # Opening the link only shows the appointment; the button confirms it.
    page.goto(confirm_url)
    expect(page.locator("h1")).to_contain_text("Your appointment")
    expect(page.locator("main")).to_contain_text(timezone.localtime(start).strftime("%H:%M"))
    session.refresh_from_db()
    assert session.status == SessionStatus.SCHEDULED
    shots("confirm link")
    page.click("button:has-text('Confirm my appointment')")
    expect(page.locator(".alert-success")).to_contain_text(
        "Thank you: your appointment is confirmed."
    )
    shots("confirmed")
    session.refresh_from_db()
    assert session.status == SessionStatus.CONFIRMED
    assert session.history.first().history_change_reason == (
        "Confirmed by the patient from a reminder"
    )

    # The same link again offers nothing more to press.
    page.goto(confirm_url)
    expect(page.locator("button")).to_have_count(0)
    expect(page.locator(".alert-info")).to_contain_text("already confirmed")
