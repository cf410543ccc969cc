"""Reminders: the policy (offsets, channels, quiet hours, late bookings), planning with bookings,
the dispatcher, the sender's claim and checks, retries, the sweeper, resend, and the content.
Tasks run eagerly here; tests/integration/ runs the same pipeline with a real worker, Redis and
SMTP server."""

import smtplib
from datetime import date, timedelta
from email import message_from_string

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.utils import timezone

import clinic.sms
from patients.models import ReminderChannel
from tests.factories import PatientFactory, ProtocolFactory
from treatments import reminder_policy as policy
from treatments import services
from treatments.models import Reminder, ReminderStatus, SessionStatus
from treatments.services import reminders as reminder_services

from .conftest import at

DAY = date(2026, 12, 3)  # a Thursday
H = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _fresh_email_connection():
    # The sender keeps its SMTP connection open between reminders; each test has its backend.
    reminder_services._close_email_connection()
    yield
    reminder_services._close_email_connection()


@pytest.fixture
def locmem_sms(settings):
    settings.SMS_BACKEND = "clinic.sms.backends.locmem.LocmemBackend"
    clinic.sms.outbox.clear()
    return clinic.sms.outbox


def patient_with(**fields):
    return PatientFactory.build(**fields)


def planned(patient, start, now):
    return policy.plan(patient=patient, session_start=start, now=now)


# The policy


def test_default_schedule_is_email_two_days_and_sms_three_hours_before():
    assert policy.schedule() == [
        policy.ScheduleEntry("email", 48 * H),
        policy.ScheduleEntry("sms", 3 * H),
    ]


@pytest.mark.parametrize("entry", ["email", "fax:2", "sms:0", "sms:-3", "email:soon"])
def test_a_malformed_schedule_is_refused_with_the_setting_named(settings, entry):
    settings.REMINDER_SCHEDULE = [entry]
    with pytest.raises(ImproperlyConfigured, match="REMINDER_SCHEDULE"):
        policy.schedule()


def test_reminders_go_by_the_patients_preferred_channel():
    start = at(DAY, 11)
    by_sms = planned(patient_with(preferred_channel="sms"), start, start - 72 * H)
    by_email = planned(patient_with(preferred_channel="email"), start, start - 72 * H)

    assert [(r.channel, r.due_at, r.skip_reason) for r in by_sms] == [
        ("sms", start - 48 * H, ""),
        ("sms", start - 3 * H, ""),
    ]
    assert [r.channel for r in by_email] == ["email", "email"]


def test_a_missing_address_falls_back_to_the_other_channel_or_is_skipped_with_the_reason():
    start = at(DAY, 11)
    no_phone = planned(
        patient_with(preferred_channel="sms", mobile_phone=""), start, start - 72 * H
    )
    nothing = planned(patient_with(email="", mobile_phone=""), start, start - 72 * H)

    assert [r.channel for r in no_phone] == ["email", "email"]
    assert all(not r.skip_reason for r in no_phone)
    assert [r.skip_reason for r in nothing] == [
        "The patient has neither an email address nor a mobile phone."
    ] * 2


def test_a_patient_who_opted_out_gets_skipped_reminders_that_say_so():
    start = at(DAY, 11)
    reminders = planned(patient_with(reminders_opt_out=True), start, start - 72 * H)

    assert {r.skip_reason for r in reminders} == {"The patient asked for no reminders."}


def test_a_reminder_due_in_quiet_hours_goes_when_they_end():
    # SMS three hours before 09:30 would be 06:30, inside 21:00-08:00.
    start = at(DAY, 9, 30)
    sms = planned(patient_with(preferred_channel="sms"), start, start - 72 * H)[-1]

    assert sms.due_at == at(DAY, 8)


def test_a_reminder_whose_quiet_hours_end_after_the_session_goes_when_they_begin(settings):
    # 07:30 session: three hours before is 04:30; the quiet hours end at 08:00, too late.
    start = at(DAY, 7, 30)
    sms = planned(patient_with(preferred_channel="sms"), start, start - 72 * H)[-1]

    assert sms.due_at == at(DAY - timedelta(days=1), 21)


def test_quiet_hours_within_one_day_are_understood_too(settings):
    settings.REMINDER_QUIET_HOURS = "13:00-15:00"
    start = at(DAY, 17)  # three hours before is 14:00

    assert planned(patient_with(preferred_channel="sms"), start, start - 72 * H)[-1].due_at == at(
        DAY, 15
    )


def test_booked_inside_an_offset_the_session_still_gets_one_reminder_now():
    start = at(DAY, 18)
    now = start - 10 * H  # the 48-hour email's time has passed, the 3-hour one is ahead

    reminders = planned(patient_with(), start, now)

    assert [(r.due_at, r.skip_reason) for r in reminders] == [(now, ""), (start - 3 * H, "")]


def test_booked_inside_every_offset_only_the_latest_goes_now():
    start = at(DAY, 18)
    now = start - 2 * H

    reminders = planned(patient_with(), start, now)

    assert [(r.before, r.due_at, r.skip_reason) for r in reminders] == [
        (48 * H, start - 48 * H, "Booked after this reminder's time."),
        (3 * H, now, ""),
    ]


def test_booked_an_hour_or_less_before_nothing_is_sent():
    start = at(DAY, 18)
    reminders = planned(patient_with(), start, start - 50 * timedelta(minutes=1))

    assert all(r.skip_reason for r in reminders)
    assert "less than an hour" in reminders[-1].skip_reason


def test_booked_late_at_night_the_patient_gets_one_message_in_the_morning():
    start = at(DAY, 11)
    now = at(DAY - timedelta(days=1), 22, 30)

    reminders = planned(patient_with(preferred_channel="sms"), start, now)

    # The 3-hour reminder is at 08:00 anyway: the late one would only repeat it.
    assert [(r.before, r.due_at, r.skip_reason) for r in reminders] == [
        (3 * H, at(DAY, 8), ""),
        (48 * H, at(DAY, 8), "The next reminder goes out first."),
    ]


def test_booked_in_the_early_morning_for_the_same_morning_one_message_when_quiet_hours_end():
    # 09:00 session booked at 07:00: both times have passed; one reminder, at 08:00.
    start = at(DAY, 9)
    reminders = planned(patient_with(preferred_channel="sms"), start, at(DAY, 7))

    assert [(r.before, r.due_at, r.skip_reason) for r in reminders] == [
        (48 * H, at(DAY - timedelta(days=2), 9), "Booked after this reminder's time."),
        (3 * H, at(DAY, 8), ""),
    ]


def test_quiet_hours_are_the_clinics_whatever_time_zone_is_active():
    with timezone.override("UTC"):
        assert policy.in_quiet_hours(at(DAY, 21, 30))  # 20:30 UTC, 21:30 in Madrid


def test_quiet_hours_across_the_autumn_clock_change():
    # Europe/Madrid leaves summer time on 25 October 2026 at 03:00.
    start = at(date(2026, 10, 25), 9, 30)
    sms = planned(patient_with(preferred_channel="sms"), start, start - 72 * H)[-1]

    assert sms.due_at == at(date(2026, 10, 25), 8)
    assert start - sms.due_at == timedelta(hours=1, minutes=30)


def test_retry_delays_double_with_jitter_and_are_capped(settings):
    settings.REMINDER_RETRY_SECONDS = 30
    for attempt, ceiling in [(1, 30), (2, 60), (3, 120), (10, 1800)]:
        delays = [policy.retry_delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


# Planning with the bookings


@pytest.fixture
def booking(course, practitioner, room, desk):
    """Books session 1 of the course on DAY at 11:00, three days ahead of 'now'."""

    def book(start=None, number=1):
        return services.session_book(
            course=course,
            number=number,
            start=start or at(DAY, 11),
            end=(start or at(DAY, 11)) + timedelta(minutes=45),
            practitioner=practitioner,
            room=room,
            actor=desk,
        )

    return book


@pytest.fixture
def now():
    with time_machine.travel(at(DAY - timedelta(days=3), 10), tick=False) as traveller:
        yield traveller


def test_booking_plans_the_sessions_reminders(now, booking):
    session = booking()

    assert list(session.reminders.values_list("channel", "due_at", "status")) == [
        ("email", at(DAY - timedelta(days=2), 11), "pending"),
        ("email", at(DAY, 8), "pending"),
    ]


def test_a_booking_that_rolls_back_leaves_no_reminder(now, booking):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        booking()
        raise RuntimeError("the desk's form failed after booking")

    assert not Reminder.objects.exists()


def test_moving_a_session_replaces_its_pending_reminders(now, booking, desk):
    session = booking()
    old = list(session.reminders.all())

    services.session_move(
        session=session, start=at(DAY, 16), end=at(DAY, 16, 45), actor=desk, reason="Patient asked"
    )

    for reminder in old:
        reminder.refresh_from_db()
        assert (reminder.status, reminder.reason) == ("cancelled", "The session was moved.")
    live = session.reminders.filter(status="pending")
    assert list(live.values_list("due_at", "session_start")) == [
        (at(DAY - timedelta(days=2), 16), at(DAY, 16)),
        (at(DAY, 13), at(DAY, 16)),
    ]


def test_changing_only_the_room_keeps_the_reminders(now, booking, desk):
    from tests.factories import RoomFactory

    session = booking()
    services.session_move(
        session=session,
        start=session.scheduled_start,
        end=session.scheduled_end,
        room=RoomFactory(name="Cabina 2"),
        actor=desk,
    )

    assert session.reminders.filter(status="pending").count() == 2


def test_cancelling_a_session_cancels_its_reminders(now, booking, desk):
    session = booking()

    services.session_cancel(session=session, by_patient=False, reason="Doctor ill", actor=desk)

    assert set(session.reminders.values_list("status", "reason")) == {
        ("cancelled", "The session is cancelled by the clinic.")
    }


# The pipeline


def dispatch_and_run(django_capture_on_commit_callbacks, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        return services.reminders_dispatch(**kwargs)


def test_a_due_reminder_is_sent_once_with_its_id_as_message_id(
    now, booking, django_capture_on_commit_callbacks
):
    session = booking()
    first = session.reminders.first()
    now.move_to(first.due_at + timedelta(seconds=30))

    dispatched = dispatch_and_run(django_capture_on_commit_callbacks)
    again = dispatch_and_run(django_capture_on_commit_callbacks)

    assert dispatched.handed_out == [first.pk] and again.handed_out == []
    first.refresh_from_db()
    assert first.status == "sent" and first.sent_at and first.attempts == 1
    assert first.provider_id == first.message_id == f"<reminder-{first.pk}@clinic.localhost>"
    assert [m.extra_headers["Message-ID"] for m in mail.outbox] == [first.message_id]
    # A second hand-out of the same row (a duplicated broker message) claims nothing.
    assert services.reminder_send(reminder_id=first.pk).status == "not pending"
    assert len(mail.outbox) == 1


def test_the_email_is_generic_in_the_patients_language_with_working_links(
    now, booking, django_capture_on_commit_callbacks, patient, client
):
    patient.notes = "Rosacea; on isotretinoin until May"
    patient.save()
    session = booking()
    now.move_to(session.reminders.first().due_at)

    dispatch_and_run(django_capture_on_commit_callbacks)

    (email,) = mail.outbox
    html = email.alternatives[0][0]
    assert email.to == [patient.email]
    assert "Clínica Demo" in email.subject and "jueves 3 diciembre" in email.subject
    assert "11:00" in email.body and "Carrer de Balmes 1" in email.body
    intro = "Le recordamos su cita en Clínica Demo el jueves 3 diciembre 2026 a las 11:00."
    assert intro in email.body and intro in html
    for text in (email.subject, email.body, html):
        for clinical in ("isotretinoin", "Rosacea", session.course.protocol.name, "PRP", "HA"):
            assert clinical not in text
        assert patient.family_name not in text
    # The fixed sentences are the patient's language too, in both parts.
    assert email.body.startswith("Hola:\n") and "Confirme su asistencia:" in email.body
    assert '<html lang="es">' in html and "Cancelar mi cita" in html
    confirm = next(line for line in email.body.splitlines() if "/appointments/confirm/" in line)
    assert confirm in html
    now.move_to(session.scheduled_start - 3 * H)
    client.post(confirm.strip().removeprefix("http://127.0.0.1:8000"))
    session.refresh_from_db()
    assert session.status == SessionStatus.CONFIRMED


def test_the_html_part_escapes_what_it_shows_and_the_text_part_does_not(
    now, booking, django_capture_on_commit_callbacks, settings
):
    settings.CLINIC_NAME = "Núñez & <Hijos>"
    settings.CLINIC_ADDRESS = 'Calle "Mayor" 1'
    session = booking()
    now.move_to(session.reminders.first().due_at)

    dispatch_and_run(django_capture_on_commit_callbacks)

    (email,) = mail.outbox
    html = email.alternatives[0][0]
    assert "<title>Núñez &amp; &lt;Hijos&gt;</title>" in html and "<Hijos>" not in html
    assert "Calle &#34;Mayor&#34; 1" in html
    assert email.body.endswith("\nNúñez & <Hijos>\n") and 'Calle "Mayor" 1' in email.body


def test_an_sms_reminder_carries_the_reminders_reference(
    now, course, booking, locmem_sms, django_capture_on_commit_callbacks
):
    course.patient.preferred_channel = ReminderChannel.SMS
    course.patient.preferred_language = "en"
    course.patient.save()
    session = booking()
    reminder = session.reminders.first()
    now.move_to(reminder.due_at)

    dispatch_and_run(django_capture_on_commit_callbacks)

    (sms,) = locmem_sms
    reminder.refresh_from_db()
    assert sms.reference == f"reminder-{reminder.pk}" and sms.to == str(course.patient.mobile_phone)
    assert "3/12 at 11:00" in sms.body and "/appointments/cancel/" in sms.body
    assert reminder.status == "sent" and reminder.provider_id.startswith("locmem-")


def test_the_dispatcher_skips_reminders_of_sessions_already_begun(
    now, booking, django_capture_on_commit_callbacks
):
    session = booking()
    now.move_to(session.scheduled_start + timedelta(minutes=5))  # the clinic's server was down

    dispatched = dispatch_and_run(django_capture_on_commit_callbacks)

    assert dispatched.handed_out == [] and dispatched.skipped == 2
    assert set(session.reminders.values_list("status", flat=True)) == {"skipped"}
    assert mail.outbox == []


def test_the_dispatcher_takes_a_batch_at_a_time_and_says_when_more_are_due(
    now, course, booking, django_capture_on_commit_callbacks
):
    booking()
    booking(start=at(DAY, 10), number=2)
    now.move_to(at(DAY, 8, 30))  # all four due

    first = dispatch_and_run(django_capture_on_commit_callbacks, limit=3)
    second = dispatch_and_run(django_capture_on_commit_callbacks, limit=3)

    assert (len(first.handed_out), first.full_batch) == (3, True)
    assert (len(second.handed_out), second.full_batch) == (1, False)
    assert len({m.extra_headers["Message-ID"] for m in mail.outbox}) == 4


def test_a_handed_out_reminder_lost_by_the_broker_is_handed_out_again_later(now, booking, settings):
    session = booking()
    reminder = session.reminders.first()
    now.move_to(reminder.due_at)
    services.reminders_dispatch()  # on_commit never runs here: the message is "lost"

    assert services.reminders_dispatch().handed_out == []
    now.shift(timedelta(seconds=settings.REMINDER_REQUEUE_SECONDS + 1))
    assert services.reminders_dispatch().handed_out == [reminder.pk]


def test_the_sender_checks_the_session_again_before_sending(now, booking, desk):
    session = booking()
    email = session.reminders.first()
    now.move_to(email.due_at)
    # Cancelled between the dispatcher's pick and the worker's claim (the pending rows were
    # cancelled by the service, so put one back as a worker would still find it).
    services.session_cancel(session=session, by_patient=True, reason="Flu", actor=desk)
    Reminder.objects.filter(pk=email.pk).update(status="pending")

    assert services.reminder_send(reminder_id=email.pk).status == "skipped"
    email.refresh_from_db()
    assert email.reason == "The session is cancelled by the patient."
    assert mail.outbox == []


def test_a_patient_who_opts_out_after_booking_is_not_reminded(now, booking, patient):
    email = booking().reminders.first()
    patient.reminders_opt_out = True
    patient.save()
    now.move_to(email.due_at)

    services.reminder_send(reminder_id=email.pk)

    email.refresh_from_db()
    assert (email.status, email.reason) == ("skipped", "The patient asked for no reminders.")
    assert mail.outbox == []


def test_a_reminder_for_the_old_time_of_a_moved_session_is_not_sent(now, booking):
    session = booking()
    email = session.reminders.first()
    # The worker holds a reminder planned for another time.
    Reminder.objects.filter(pk=email.pk).update(session_start=at(DAY, 9))
    now.move_to(email.due_at)

    assert services.reminder_send(reminder_id=email.pk).status == "skipped"
    email.refresh_from_db()
    assert email.reason == "The session was moved."
    assert mail.outbox == []


def test_a_reminder_reaching_a_worker_in_quiet_hours_waits_for_the_morning(now, booking):
    session = booking()
    email = session.reminders.first()
    now.move_to(at(DAY - timedelta(days=1), 23))  # a backlog reaches the worker at night

    assert services.reminder_send(reminder_id=email.pk).status == "deferred"
    email.refresh_from_db()
    assert (email.status, email.due_at, email.attempts) == ("pending", at(DAY, 8), 0)


class BrokenSMTP:
    """An email backend whose server is down."""

    def __init__(self, *args, **kwargs):
        pass

    def open(self):
        raise ConnectionRefusedError(111, "Connection refused")

    def close(self):
        pass


def test_failures_retry_then_the_reminder_is_failed_with_the_error_and_can_be_resent(
    now, booking, desk, django_capture_on_commit_callbacks, settings
):
    settings.EMAIL_BACKEND = "tests.treatments.test_reminders.BrokenSMTP"
    settings.REMINDER_MAX_ATTEMPTS = 3
    session = booking()
    email = session.reminders.first()
    now.move_to(email.due_at)

    first = services.reminder_send(reminder_id=email.pk)
    email.refresh_from_db()
    assert first.status == "pending" and 0 < first.retry_in <= settings.REMINDER_RETRY_SECONDS
    assert email.attempts == 1 and "Connection refused" in email.last_error
    assert email.enqueued_at > timezone.now()  # the dispatcher leaves the retry to the task
    services.reminder_send(reminder_id=email.pk)
    last = services.reminder_send(reminder_id=email.pk)
    email.refresh_from_db()
    assert last.status == "failed" and email.status == "failed" and email.attempts == 3

    # The server is back; reception sends it again.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    reminder_services._close_email_connection()
    with django_capture_on_commit_callbacks(execute=True):
        services.reminder_resend(reminder=email, actor=desk)
    email.refresh_from_db()
    assert email.status == "sent" and len(mail.outbox) == 1


def test_only_a_failed_reminder_can_be_resent(now, booking, desk):
    email = booking().reminders.first()
    with pytest.raises(ValidationError, match="Only a failed reminder"):
        services.reminder_resend(reminder=email, actor=desk)


def test_the_sweeper_returns_claims_a_dead_worker_left(now, booking, settings):
    session = booking()
    email, sms = session.reminders.all()
    Reminder.objects.filter(pk=email.pk).update(
        status="sending", claimed_at=timezone.now() - timedelta(hours=1)
    )
    Reminder.objects.filter(pk=sms.pk).update(status="sending", claimed_at=timezone.now())

    assert services.reminders_sweep() == 1
    assert Reminder.objects.get(pk=email.pk).status == "pending"
    assert Reminder.objects.get(pk=sms.pk).status == "sending"


def test_the_dispatch_task_keeps_going_while_batches_are_full(
    now, booking, settings, django_capture_on_commit_callbacks
):
    from treatments.tasks import reminders_dispatch

    booking()
    booking(start=at(DAY, 10), number=2)
    now.move_to(at(DAY, 8, 30))
    settings.REMINDER_DISPATCH_BATCH = 1

    with django_capture_on_commit_callbacks(execute=True):
        reminders_dispatch.delay()

    assert Reminder.objects.filter(status=ReminderStatus.SENT).count() == 4


def test_a_full_batch_hands_out_the_next_dispatch_amid_its_own_messages(
    now, booking, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from treatments.tasks import reminder_send, reminders_dispatch

    for _ in range(3):
        booking(start=at(DAY, 10 + _), number=_ + 1)
    now.move_to(at(DAY, 9, 30))  # six due: an email and a text message a session
    published = []
    for task in (reminder_send, reminders_dispatch):
        monkeypatch.setattr(
            task, "apply_async", lambda args=(), task=task, **kw: published.append((task, args))
        )
    monkeypatch.setitem(reminder_send.app.conf, "task_always_eager", False)  # as in production

    with django_capture_on_commit_callbacks(execute=True):
        full = services.reminders_dispatch(limit=4, follow_up=True)
    handed_out = [(reminder_send, (pk,)) for pk in full.handed_out]
    # The next dispatch sits in the middle, so it runs while the second half is being sent.
    assert published == [*handed_out[:2], (reminders_dispatch, ()), *handed_out[2:]]

    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        last = services.reminders_dispatch(limit=4, follow_up=True)
    assert len(last.handed_out) == 2 and not last.full_batch
    assert published == [(reminder_send, (pk,)) for pk in last.handed_out]

    # Called without follow_up (as the tests do), the service chains nothing.
    Reminder.objects.update(status=ReminderStatus.PENDING, enqueued_at=None)
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.reminders_dispatch(limit=4)
    assert (reminders_dispatch, ()) not in published and len(published) == 4

    # Run eagerly, the next dispatch goes after the batch, once its producer is released.
    monkeypatch.setitem(reminder_send.app.conf, "task_always_eager", True)
    Reminder.objects.update(status=ReminderStatus.PENDING, enqueued_at=None)
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        full = services.reminders_dispatch(limit=4, follow_up=True)
    assert published == [(reminder_send, (pk,)) for pk in full.handed_out] + [
        (reminders_dispatch, ())
    ]


def test_a_full_batch_of_sessions_already_begun_still_hands_out_the_next_dispatch(
    now, booking, monkeypatch, django_capture_on_commit_callbacks
):
    from treatments.tasks import reminder_send, reminders_dispatch

    booking()
    booking(start=at(DAY, 12), number=2)
    now.move_to(at(DAY, 13))  # every reminder due, every session begun
    published = []
    for task in (reminder_send, reminders_dispatch):
        monkeypatch.setattr(
            task, "apply_async", lambda args=(), task=task, **kw: published.append((task, args))
        )
    monkeypatch.setitem(reminder_send.app.conf, "task_always_eager", False)

    with django_capture_on_commit_callbacks(execute=True):
        dispatched = services.reminders_dispatch(limit=3, follow_up=True)

    assert (dispatched.handed_out, dispatched.skipped, dispatched.full_batch) == ([], 3, True)
    assert published == [(reminders_dispatch, ())]


def test_message_ids_stay_the_same_across_attempts(now, booking):
    email = booking().reminders.first()
    now.move_to(email.due_at)
    services.reminder_send(reminder_id=email.pk)
    Reminder.objects.filter(pk=email.pk).update(status="pending")  # as after a lost claim
    services.reminder_send(reminder_id=email.pk)

    ids = [message_from_string(m.message().as_string())["Message-ID"] for m in mail.outbox]
    assert ids == [email.message_id, email.message_id]


def test_a_protocol_name_never_reaches_the_sms(now, course, booking, locmem_sms):
    course.protocol = ProtocolFactory(name="Alopecia PRP")
    course.save()
    course.patient.preferred_channel = "sms"
    course.patient.save()
    reminder = booking().reminders.first()
    now.move_to(reminder.due_at)

    services.reminder_send(reminder_id=reminder.pk)

    assert locmem_sms and "Alopecia" not in locmem_sms[0].body


def test_a_failed_reminder_is_cancelled_with_its_session_and_cannot_be_resent(now, booking, desk):
    session = booking()
    email = session.reminders.first()
    Reminder.objects.filter(pk=email.pk).update(status="failed", last_error="Connection refused")

    services.session_cancel(session=session, by_patient=True, reason="Flu", actor=desk)

    email.refresh_from_db()
    assert email.status == "cancelled"
    Reminder.objects.filter(pk=email.pk).update(status="failed")
    with pytest.raises(ValidationError, match="The session has changed"):
        services.reminder_resend(reminder=email, actor=desk)


class RefusingSMTP(BrokenSMTP):
    """A server that answers, and refuses: the address, or the message for good."""

    error = None

    def open(self):
        return True

    def send_messages(self, messages):
        raise self.error


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (
            smtplib.SMTPRecipientsRefused(
                {"ana@example.com": (550, b"5.1.1 <ana@example.com> unknown")}
            ),
            "The mail server refused the address (SMTP 550).",
        ),
        (
            smtplib.SMTPDataError(554, b"5.7.1 rejected as spam"),
            "The mail server refused the message (SMTP 554).",
        ),
    ],
    ids=["address refused", "message refused for good"],
)
def test_a_permanent_refusal_fails_at_once_without_the_address_in_the_error(
    now, booking, settings, error, shown, caplog
):
    settings.EMAIL_BACKEND = "tests.treatments.test_reminders.RefusingSMTP"
    RefusingSMTP.error = error
    email = booking().reminders.first()
    now.move_to(email.due_at)

    outcome = services.reminder_send(reminder_id=email.pk)

    email.refresh_from_db()
    assert outcome.status == "failed" and (email.attempts, email.last_error) == (1, shown)
    assert "ana@example.com" not in caplog.text


def test_application_logs_carry_nothing_clinical_or_personal(
    now, booking, desk, settings, caplog, patient, client, django_capture_on_commit_callbacks
):
    """Booking, a failing send, a resend, a patient's cancellation: what the logs say names
    reminders and sessions by id, never a patient, an address or a clinical note."""
    import logging

    caplog.set_level(logging.DEBUG)
    patient.notes = "Keloid scar on the left cheek"
    patient.save()
    session = booking()
    email = session.reminders.first()
    now.move_to(email.due_at)
    settings.EMAIL_BACKEND = "tests.treatments.test_reminders.BrokenSMTP"
    services.reminder_send(reminder_id=email.pk)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    reminder_services._close_email_connection()
    with django_capture_on_commit_callbacks(execute=True):
        services.reminder_send(reminder_id=email.pk)
    from treatments.reminder_policy import link_token

    token = link_token(
        session_id=session.pk, session_start=session.scheduled_start, action="cancel"
    )
    client.post(f"/appointments/cancel/{token}/")
    client.post("/appointments/cancel/forged/")

    assert caplog.records, "the flow logs something, so the check below means something"
    for text in (
        patient.given_name,
        patient.family_name,
        patient.email,
        str(patient.mobile_phone),
        "Keloid",
        session.course.protocol.name,
    ):
        assert text not in caplog.text


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_sender_reconnects_when_the_database_dropped_its_connection(now, booking):
    """The claim and the mark-sent run on a cursor of their own: they still get Django's health
    check, as after a database restart between two tasks."""
    import psycopg
    from django.db import connection

    session = booking()
    first, second = session.reminders.order_by("due_at")
    now.move_to(session.scheduled_start - 2 * H)
    assert services.reminder_send(reminder_id=first.pk).status == ReminderStatus.SENT

    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    connection.close_if_unusable_or_obsolete()  # what Celery does between two tasks

    assert services.reminder_send(reminder_id=second.pk).status == ReminderStatus.SENT
    assert set(session.reminders.values_list("status", flat=True)) == {ReminderStatus.SENT}
