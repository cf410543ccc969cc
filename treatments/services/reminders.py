"""Reminders: planning them when a session is booked or moved, handing due ones to the workers,
sending one, and putting right what a dead worker or a lost broker message left behind.

Every state change is one conditional UPDATE on the reminder's row (pending -> sending only if it
is still pending, and so on), so two workers, two dispatchers or a sweeper racing a slow worker
can never both act on the same row. What can still happen, after a worker dies between sending
and recording it, is a second send of the same message: it carries the same Message-ID (or SMS
reference), so the patient's mail client and the provider can recognise it."""

import contextlib
import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.mail import TextAndHtmlEmail
from clinic.sms import SmsError, SmsMessage, send_sms
from patients.models import Patient, ReminderChannel

from .. import reminder_policy as policy
from ..models import Course, Reminder, ReminderStatus, Session, SessionStatus
from ..reminder_content import render_reminder

log = logging.getLogger(__name__)

SENDABLE_SESSION = (SessionStatus.SCHEDULED, SessionStatus.CONFIRMED)


def reminders_plan(*, session: Session, now: datetime | None = None) -> list[Reminder]:
    """Writes the session's reminders from the schedule; called inside the booking's (or the
    move's) transaction, so a booking rolled back leaves no reminder behind."""
    now = now or timezone.now()
    patient = session.course.patient
    rows = [
        Reminder(
            session=session,
            channel=planned.channel,
            before=planned.before,
            session_start=session.scheduled_start,
            due_at=planned.due_at,
            status=ReminderStatus.SKIPPED if planned.skip_reason else ReminderStatus.PENDING,
            reason=planned.skip_reason,
        )
        for planned in policy.plan(patient=patient, session_start=session.scheduled_start, now=now)
    ]
    return Reminder.objects.bulk_create(rows)


def reminders_cancel(*, session: Session, reason: str) -> int:
    """Cancels what has not gone out yet, failed ones included (no one should send those again).
    A reminder already being sent is caught by the sender's own check of the session."""
    return session.reminders.filter(
        status__in=[ReminderStatus.PENDING, ReminderStatus.FAILED]
    ).update(status=ReminderStatus.CANCELLED, reason=reason[:200])


def reminders_replan(*, session: Session, reason: str) -> list[Reminder]:
    reminders_cancel(session=session, reason=reason)
    return reminders_plan(session=session)


# The pipeline


@dataclass(frozen=True)
class Dispatched:
    handed_out: list[int]
    skipped: int
    full_batch: bool


def _enqueue(ids: list[int], *, follow_up: bool) -> None:
    """Publishes a `reminder_send` for each id and, if `follow_up`, the next dispatch, in the
    middle of them: it then runs while the second half is still being sent, so the workers have
    the next batch before they run out. Published after the batch, it waited behind all of it,
    and at every batch the workers stood idle while one of them selected and published the next
    (docs/benchmarks.md, "Reminders")."""
    from ..tasks import reminder_send, reminders_dispatch

    messages = [(reminder_send, (reminder_id,)) for reminder_id in ids]
    eager = reminder_send.app.conf.task_always_eager
    if follow_up and not eager:
        messages.insert(len(messages) // 2, (reminders_dispatch, ()))
    # On Redis the batch goes out in one pipeline, not one round trip a message (one by one,
    # publishing cost 1.6 ms a message, 18 % of a worker child's busy time). If it fails half-way,
    # what did not reach the broker is handed out again after REMINDER_REQUEUE_SECONDS.
    with reminder_send.app.producer_or_acquire() as producer, producer.batch():
        for task, arguments in messages:
            task.apply_async(arguments, producer=producer)
    if follow_up and eager:
        # Run eagerly (the tests), a task runs as it is published: the next dispatch runs once
        # this batch is done and its producer is back in the pool, not nested inside it.
        reminders_dispatch.apply_async()


def reminders_dispatch(
    *, now: datetime | None = None, limit: int | None = None, follow_up: bool = False
) -> Dispatched:
    """Hands due reminders to the workers, at most `limit` at a time. Rows another dispatcher
    holds are skipped (SKIP LOCKED), so two beats never hand out the same reminder; a reminder
    handed out but never claimed (the broker lost it) is handed out again after
    REMINDER_REQUEUE_SECONDS. Reminders of sessions that have started are skipped: after a
    stoppage nothing goes out late in a burst. With `follow_up`, a full batch (more are due)
    also hands out the next dispatch, amid its own messages (the dispatch task's way)."""
    now = now or timezone.now()
    limit = limit or settings.REMINDER_DISPATCH_BATCH
    requeue_before = now - timedelta(seconds=settings.REMINDER_REQUEUE_SECONDS)
    with transaction.atomic():
        rows = list(
            Reminder.objects.select_for_update(skip_locked=True)
            .filter(status=ReminderStatus.PENDING, due_at__lte=now)
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=requeue_before))
            .order_by("due_at", "id")
            .values_list("id", "session_start")[:limit]
        )
        started = [pk for pk, start in rows if start <= now]
        ready = [pk for pk, start in rows if start > now]
        full_batch = len(rows) == limit
        if started:
            Reminder.objects.filter(pk__in=started).update(
                status=ReminderStatus.SKIPPED, reason=_("The session had already begun.")
            )
        if ready:
            Reminder.objects.filter(pk__in=ready).update(enqueued_at=now)
        if ready or (follow_up and full_batch):
            transaction.on_commit(lambda: _enqueue(ready, follow_up=follow_up and full_batch))
    return Dispatched(handed_out=ready, skipped=len(started), full_batch=full_batch)


def reminders_sweep(*, now: datetime | None = None) -> int:
    """Returns to pending the claims of workers that died mid-send."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.REMINDER_CLAIM_TIMEOUT_SECONDS)
    returned = Reminder.objects.filter(status=ReminderStatus.SENDING, claimed_at__lt=stale).update(
        status=ReminderStatus.PENDING, claimed_at=None, enqueued_at=None
    )
    if returned:
        log.warning("Returned %d stale reminder claims to pending", returned)
    return returned


@dataclass(frozen=True)
class SendOutcome:
    status: str
    retry_in: float | None = None


class _Permanent(Exception):
    """A failure that retrying cannot mend (the address itself was refused)."""


# One SMTP connection per worker process, opened on first use and kept: a reminder then costs
# one message on an open connection, not a connection of its own.
_email_connection = None


def _send_email(message: EmailMultiAlternatives) -> None:
    global _email_connection
    for attempt in (1, 2):
        reused = _email_connection is not None
        if not reused:
            connection = get_connection(fail_silently=False)
            connection.open()
            _email_connection = connection
        message.connection = _email_connection
        try:
            message.send()
            return
        except smtplib.SMTPRecipientsRefused as error:
            # The server's answer names the address: keep only its code, for logs and staff.
            codes = sorted({code for code, _answer in error.recipients.values()})
            raise _Permanent(
                _("The mail server refused the address (SMTP %(codes)s).")
                % {"codes": ", ".join(map(str, codes))}
            ) from None
        except smtplib.SMTPResponseException as error:
            _close_email_connection()
            if error.smtp_code >= 500:
                raise _Permanent(
                    _("The mail server refused the message (SMTP %(code)s).")
                    % {"code": error.smtp_code}
                ) from None
            raise
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            _close_email_connection()
            if not reused or attempt == 2:
                raise
        except Exception:
            _close_email_connection()
            raise


def _close_email_connection() -> None:
    global _email_connection
    if _email_connection is not None:
        # Closing a broken connection may fail too; it is dropped either way.
        with contextlib.suppress(Exception):
            _email_connection.close()
    _email_connection = None


def _deliver(reminder: Reminder, channel: str, address: str) -> str:
    content = render_reminder(reminder, channel)
    if channel == ReminderChannel.EMAIL:
        message = TextAndHtmlEmail(
            subject=content.subject,
            body=content.text,
            to=[address],
            headers={"Message-ID": reminder.message_id},
        )
        message.attach_alternative(content.html, "text/html")
        _send_email(message)
        return reminder.message_id
    return send_sms(SmsMessage(to=address, body=content.sms, reference=reminder.reference))


def _finish(reminder_id: int, claim: datetime, **fields) -> bool:
    """Records the outcome of a claim, unless the sweeper has taken the claim back meanwhile."""
    return bool(
        Reminder.objects.filter(
            pk=reminder_id, status=ReminderStatus.SENDING, claimed_at=claim
        ).update(**fields)
    )


# The claim, and what the sender reads, in one statement on PostgreSQL: the sender runs once
# per reminder, and a round trip plus the ORM's query building was a third of its time.
_CLAIM_SQL = """
UPDATE treatments_reminder AS r
   SET status = 'sending', claimed_at = %s, attempts = r.attempts + 1
  FROM treatments_session AS s, treatments_course AS c, patients_patient AS p
 WHERE r.id = %s AND r.status = 'pending'
   AND s.id = r.session_id AND c.id = s.course_id AND p.id = c.patient_id
RETURNING r.id, r.session_id, r.channel, r.session_start, r.attempts,
          s.status, s.scheduled_start, s.course_id,
          p.id, p.email, p.mobile_phone, p.preferred_channel, p.preferred_language,
          p.reminders_opt_out
"""
REMINDER_COLUMNS = ["id", "session_id", "channel", "session_start", "attempts"]
SESSION_COLUMNS = ["status", "scheduled_start", "course_id"]
PATIENT_COLUMNS = [
    "id",
    "email",
    "mobile_phone",
    "preferred_channel",
    "preferred_language",
    "reminders_opt_out",
]


def _built(model, columns):
    """An instance from some of its columns, the others deferred (Model.from_db wants the
    values in the order of the model's fields)."""
    values = dict(columns)
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(connection.alias, names, [values[name] for name in names])


def _execute_prepared(sql: str, params: list) -> tuple | None:
    """Runs one of the sender's own statements as a server-side prepared statement, planned
    once a database connection rather than once a reminder (Django binds parameters on the
    client, so PostgreSQL plans every statement it is sent; planning the claim's join took
    longer than running it). Returns the first row, if the statement returns any.

    The checks Django makes before its own cursors are made here too (the connection's health
    after a database restart, a broken transaction); Django's query log and execute wrappers do
    not see these two statements."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    try:
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchone() if cursor.description else None
    except DatabaseError:
        # A prepared plan outlives a migration that changed a column it returns ("cached plan
        # must not change result type"): a new connection prepares it afresh on the next try.
        if not connection.in_atomic_block:
            connection.close()
        raise


def _claim(reminder_id: int, now: datetime) -> Reminder | None:
    """Pending to sending, atomically; the reminder with its session and patient, or None if
    it was not pending (another worker has it, or it is done)."""
    if connection.vendor != "postgresql":
        claimed = Reminder.objects.filter(pk=reminder_id, status=ReminderStatus.PENDING).update(
            status=ReminderStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
        if not claimed:
            return None
        return Reminder.objects.select_related("session__course__patient").get(pk=reminder_id)
    row = _execute_prepared(_CLAIM_SQL, [now, reminder_id])
    if row is None:
        return None
    reminder = _built(Reminder, zip(REMINDER_COLUMNS, row[:5], strict=True))
    session = _built(
        Session, [("id", reminder.session_id), *zip(SESSION_COLUMNS, row[5:8], strict=True)]
    )
    patient = _built(Patient, zip(PATIENT_COLUMNS, row[8:], strict=True))
    course = _built(Course, [("id", session.course_id), ("patient_id", patient.pk)])
    # Raw rows skip the fields' own conversions: the phone comes back as text.
    patient.mobile_phone = Patient._meta.get_field("mobile_phone").to_python(patient.mobile_phone)
    course.patient, session.course, reminder.session = patient, course, session
    return reminder


def reminder_send(*, reminder_id: int, now: datetime | None = None) -> SendOutcome:
    """Claims the reminder, checks the session still wants it, sends it and records the result.
    A failure is retried (the task waits `retry_in` seconds) until REMINDER_MAX_ATTEMPTS."""
    now = now or timezone.now()
    reminder = _claim(reminder_id, now)
    if reminder is None:
        return SendOutcome("not pending")
    session, patient = reminder.session, reminder.session.course.patient

    skip = None
    if session.status not in SENDABLE_SESSION:
        skip = _("The session is %(status)s.") % {"status": session.get_status_display().lower()}
    elif session.scheduled_start != reminder.session_start:
        skip = _("The session was moved.")
    elif session.scheduled_start <= now:
        skip = _("The session had already begun.")
    elif patient.reminders_opt_out:
        skip = _("The patient asked for no reminders.")
    channel, address = policy.channel_for(patient, reminder.channel)
    if skip is None and channel is None:
        skip = address
    if skip:
        _finish(reminder_id, now, status=ReminderStatus.SKIPPED, reason=skip[:200])
        return SendOutcome(ReminderStatus.SKIPPED)

    if policy.in_quiet_hours(now):
        later = policy.outside_quiet_hours(now, session.scheduled_start)
        if later > now:
            _finish(
                reminder_id,
                now,
                status=ReminderStatus.PENDING,
                due_at=later,
                claimed_at=None,
                enqueued_at=None,
                attempts=F("attempts") - 1,
            )
            return SendOutcome("deferred")
        _finish(
            reminder_id,
            now,
            status=ReminderStatus.SKIPPED,
            reason=_("Only quiet hours are left before the session."),
        )
        return SendOutcome(ReminderStatus.SKIPPED)

    try:
        provider_id = _deliver(reminder, channel, address)
    except (_Permanent, smtplib.SMTPException, OSError, SmsError) as error:
        message = str(error) or error.__class__.__name__
        log.warning("Reminder %s: attempt %s failed: %s", reminder_id, reminder.attempts, message)
        if isinstance(error, _Permanent) or reminder.attempts >= settings.REMINDER_MAX_ATTEMPTS:
            _finish(reminder_id, now, status=ReminderStatus.FAILED, last_error=message)
            return SendOutcome(ReminderStatus.FAILED)
        delay = policy.retry_delay(reminder.attempts)
        # Back to pending, handed out as of the retry's time: the task's own retry comes first,
        # and the dispatcher takes over only if the broker loses it.
        _finish(
            reminder_id,
            now,
            status=ReminderStatus.PENDING,
            claimed_at=None,
            enqueued_at=now + timedelta(seconds=delay),
            last_error=message,
        )
        return SendOutcome(ReminderStatus.PENDING, retry_in=delay)

    _mark_sent(reminder_id, now, channel=channel, recipient=address, provider_id=provider_id)
    return SendOutcome(ReminderStatus.SENT)


_MARK_SENT_SQL = """
UPDATE treatments_reminder
   SET status = 'sent', sent_at = %s, channel = %s, recipient = %s, provider_id = %s,
       last_error = '', claimed_at = %s
 WHERE id = %s AND status IN ('sending', 'pending')
"""


def _mark_sent(reminder_id: int, claim: datetime, *, channel, recipient, provider_id) -> None:
    """Recorded even if a sweeper took the claim back meanwhile: the message has gone."""
    sent_at, recipient, provider_id = timezone.now(), recipient[:254], provider_id[:200]
    if connection.vendor == "postgresql":
        _execute_prepared(
            _MARK_SENT_SQL, [sent_at, channel, recipient, provider_id, claim, reminder_id]
        )
        return
    Reminder.objects.filter(
        pk=reminder_id, status__in=[ReminderStatus.SENDING, ReminderStatus.PENDING]
    ).update(
        status=ReminderStatus.SENT,
        sent_at=sent_at,
        channel=channel,
        recipient=recipient,
        provider_id=provider_id,
        last_error="",
        claimed_at=claim,
    )


@transaction.atomic
def reminder_resend(*, reminder: Reminder, actor: AbstractBaseUser) -> Reminder:
    """Gives a failed reminder another round of attempts, at once."""
    from ..tasks import reminder_send as task

    reminder = Reminder.objects.select_for_update().select_related("session").get(pk=reminder.pk)
    session = reminder.session
    if reminder.status != ReminderStatus.FAILED:
        raise ValidationError(_("Only a failed reminder can be sent again."))
    if session.status not in SENDABLE_SESSION or session.scheduled_start != reminder.session_start:
        raise ValidationError(_("The session has changed since; its current reminders stand."))
    if session.scheduled_start <= timezone.now():
        raise ValidationError(_("The session has begun; the reminder is no longer useful."))
    reminder.status = ReminderStatus.PENDING
    reminder.attempts = 0
    reminder.due_at = reminder.enqueued_at = timezone.now()
    reminder.reason = _("Sent again by %(who)s.") % {"who": actor.get_username()}
    reminder.save(update_fields=["status", "attempts", "due_at", "enqueued_at", "reason"])
    task.delay_on_commit(reminder.pk)
    return reminder
