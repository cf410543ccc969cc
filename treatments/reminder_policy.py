"""When and how a patient is reminded of a session: the schedule, quiet hours, the channel, the
retry delays and the signed links. Pure rules with no writes; the services apply them.

The rules, in the clinic's words (docs/reminders.md):
- each entry of REMINDER_SCHEDULE is one reminder, CHANNEL:HOURS before the session;
- the patient's preferred channel wins; the other channel stands in when the patient has no
  address for it; with neither, the reminder is recorded as skipped with the reason;
- nothing leaves inside quiet hours: a reminder due then goes out when they end, or at their
  start if they end after the session begins;
- a reminder whose time has passed at booking is skipped, except that a session booked less than
  the offset ahead still gets one reminder now when it is more than an hour away.
"""

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.translation import gettext as _

from patients.models import Patient, ReminderChannel

# A session closer than this when it is booked gets no "late" reminder: the patient has just
# booked it, and a message would arrive as they leave.
LATE_REMINDER_MIN_NOTICE = timedelta(hours=1)
RETRY_DELAY_MAX_SECONDS = 30 * 60
LINK_SALT = "treatments.reminder-link"


@dataclass(frozen=True)
class ScheduleEntry:
    channel: str
    before: timedelta


@dataclass(frozen=True)
class PlannedReminder:
    """One row to write: pending at `due_at`, or skipped with `reason`."""

    channel: str
    before: timedelta
    due_at: datetime
    skip_reason: str = ""


def schedule() -> list[ScheduleEntry]:
    entries = []
    for item in settings.REMINDER_SCHEDULE:
        channel, _sep, hours = item.strip().partition(":")
        try:
            before = timedelta(hours=float(hours))
        except ValueError:
            before = None
        if channel not in ReminderChannel.values or before is None or before <= timedelta(0):
            raise ImproperlyConfigured(
                f"REMINDER_SCHEDULE entry {item!r} is not CHANNEL:HOURS with CHANNEL one of "
                f"{', '.join(ReminderChannel.values)} and HOURS above zero."
            )
        entries.append(ScheduleEntry(channel, before))
    return sorted(entries, key=lambda entry: entry.before, reverse=True)


def quiet_hours() -> tuple[time, time]:
    try:
        start, end = (
            time.fromisoformat(part.strip()) for part in settings.REMINDER_QUIET_HOURS.split("-")
        )
    except ValueError as error:
        raise ImproperlyConfigured(
            f"REMINDER_QUIET_HOURS {settings.REMINDER_QUIET_HOURS!r} is not HH:MM-HH:MM."
        ) from error
    return start, end


def clinic_zone() -> ZoneInfo:
    """Quiet hours are the clinic's, whatever time zone a request has activated."""
    return ZoneInfo(settings.TIME_ZONE)


def in_quiet_hours(moment: datetime) -> bool:
    start, end = quiet_hours()
    if start == end:
        return False
    local = timezone.localtime(moment, clinic_zone()).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end


def _at(day, hour: time) -> datetime:
    return timezone.make_aware(datetime.combine(day, hour), clinic_zone())


def outside_quiet_hours(due: datetime, session_start: datetime) -> datetime:
    """`due`, or the end of the quiet hours it falls in, or their start when they end only once
    the session has begun."""
    if not in_quiet_hours(due):
        return due
    start, end = quiet_hours()
    local = timezone.localtime(due, clinic_zone())
    day, hour = local.date(), local.time()
    if start < end or hour >= start:
        began = _at(day, start)
        ends = _at(day if start < end else day + timedelta(days=1), end)
    else:
        began, ends = _at(day - timedelta(days=1), start), _at(day, end)
    return ends if ends < session_start else began


def channel_for(patient: Patient, scheduled: str) -> tuple[str | None, str]:
    """The channel a reminder goes by, and the address; or None and the reason it cannot go."""
    addresses = {
        ReminderChannel.EMAIL: patient.email,
        ReminderChannel.SMS: str(patient.mobile_phone) if patient.mobile_phone else "",
    }
    preferred = patient.preferred_channel or scheduled
    for channel in (preferred, scheduled, *ReminderChannel.values):
        if addresses.get(channel):
            return channel, addresses[channel]
    return None, _("The patient has neither an email address nor a mobile phone.")


def plan(*, patient: Patient, session_start: datetime, now: datetime) -> list[PlannedReminder]:
    entries = schedule()
    if patient.reminders_opt_out:
        reason = _("The patient asked for no reminders.")
        return [
            PlannedReminder(e.channel, e.before, session_start - e.before, reason) for e in entries
        ]
    planned, late = [], []
    for entry in entries:
        channel, address_or_reason = channel_for(patient, entry.channel)
        # Late or not is judged on the schedule's own time; quiet hours only shift when it goes.
        meant = session_start - entry.before
        due = outside_quiet_hours(meant, session_start)
        if channel is None:
            planned.append(PlannedReminder(entry.channel, entry.before, due, address_or_reason))
        elif meant >= now and due >= now:
            planned.append(PlannedReminder(channel, entry.before, due))
        else:
            late.append(PlannedReminder(channel, entry.before, due))
    if late:
        # The one sent now is the latest of those whose time has passed: the closest to what
        # the schedule meant for a session this near.
        *passed, last = late
        too_late = _("Booked after this reminder's time.")
        planned += [PlannedReminder(r.channel, r.before, r.due_at, too_late) for r in passed]
        due = outside_quiet_hours(now, session_start)
        next_due = min((r.due_at for r in planned if not r.skip_reason), default=None)
        if session_start - now <= LATE_REMINDER_MIN_NOTICE:
            reason = _("Booked less than an hour before the session.")
        elif due < now:
            reason = _("Only quiet hours are left before the session.")
        elif next_due is not None and next_due <= due:
            reason = _("The next reminder goes out first.")
        else:
            reason = ""
        planned.append(
            PlannedReminder(last.channel, last.before, due if due >= now else now, reason)
        )
    return sorted(planned, key=lambda reminder: reminder.due_at)


def retry_delay(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: doubling from REMINDER_RETRY_SECONDS, capped, with
    jitter so that reminders failing together do not retry together."""
    delay = min(settings.REMINDER_RETRY_SECONDS * 2 ** (attempt - 1), RETRY_DELAY_MAX_SECONDS)
    return delay * random.uniform(0.5, 1.0)


# Links


class LinkError(Exception):
    """A confirm or cancel link that cannot be used; the message says why, for the patient."""


def link_token(*, session_id: int, session_start: datetime, action: str) -> str:
    return signing.dumps(
        {"s": session_id, "a": action, "t": int(session_start.timestamp())}, salt=LINK_SALT
    )


def read_link_token(token: str, *, action: str, now: datetime) -> tuple[int, datetime]:
    """The session id and the start the link was made for. Refuses tampered links, links made
    for the other action, and links whose session time has come."""
    try:
        payload = signing.loads(token, salt=LINK_SALT)
        session_id, start = int(payload["s"]), payload["t"]
        made_for = payload["a"]
    except (signing.BadSignature, KeyError, TypeError, ValueError) as error:
        raise LinkError(
            _("This link is not valid. Please use the link in your latest reminder.")
        ) from error
    if made_for != action:
        raise LinkError(_("This link is not valid. Please use the link in your latest reminder."))
    start = datetime.fromtimestamp(start, tz=timezone.get_default_timezone())
    if now >= start:
        raise LinkError(_("This link has expired: the appointment time has passed."))
    return session_id, start
