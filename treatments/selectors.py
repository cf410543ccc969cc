"""Reads for the treatments pages, with their joins done in the database."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from inventory.models import Lot

from .models import Course, Reminder, ReminderStatus, Room, Session, SessionProduct, SessionStatus
from .services import propose_dates

DEFAULT_START = time(10, 0)
DEFAULT_MINUTES = 45


def proposed_sessions(*, course: Course, skip: set[int]) -> list[dict]:
    """The sessions of a course not booked yet, each with a proposed date inside the window
    after the last one booked (or the course's start)."""
    last = (
        course.sessions.filter(
            status__in=[
                SessionStatus.SCHEDULED,
                SessionStatus.CONFIRMED,
                SessionStatus.CHECKED_IN,
                SessionStatus.COMPLETED,
            ]
        )
        .order_by("-scheduled_start")
        .values_list("scheduled_start", flat=True)
        .first()
    )
    numbers = [n for n in range(1, course.planned_sessions + 1) if n not in skip]
    if not numbers:
        return []
    start = course.start_date if last is None else timezone.localdate(last)
    days = propose_dates(
        start_date=start,
        sessions=len(numbers) + (last is not None),
        interval_min_days=course.interval_min_days,
        interval_max_days=course.interval_max_days,
    )
    if last is not None:
        days = days[1:]
    room = Room.objects.filter(active=True).first()
    return [
        {
            "number": number,
            "day": day,
            "start": DEFAULT_START,
            "minutes": DEFAULT_MINUTES,
            "practitioner": course.lead_practitioner_id,
            "room": room.pk if room else None,
        }
        for number, day in zip(numbers, days, strict=True)
    ]


# What the pages show of a session's reminders: those still meant to go, and what went.
_REMINDERS = Prefetch(
    "reminders",
    queryset=Reminder.objects.exclude(status=ReminderStatus.CANCELLED).order_by("due_at", "id"),
)


ONE_DAY = timedelta(days=1)


def day_start(day: date) -> datetime:
    """Midnight at the clinic, as an aware time."""
    return timezone.make_aware(datetime.combine(day, time.min))


def day_sessions(*, practitioner, day: date) -> QuerySet[Session]:
    """A practitioner's sessions on a day, in time order, with what the list shows."""
    return (
        Session.objects.for_practitioner(practitioner)
        # A range on the time itself (not its date in the clinic's zone), which the
        # (practitioner, scheduled_start) index serves.
        .filter(scheduled_start__gte=day_start(day), scheduled_start__lt=day_start(day + ONE_DAY))
        .select_related("course__patient", "course__protocol", "room")
        .prefetch_related(_REMINDERS)
        .order_by("scheduled_start")
    )


def session_detail_queryset() -> QuerySet[Session]:
    return Session.objects.select_related(
        "course__patient", "course__protocol", "room", "practitioner", "signed_by", "screening"
    ).prefetch_related(
        Prefetch(
            "products",
            queryset=SessionProduct.objects.select_related("product", "lot").order_by("id"),
        ),
        _REMINDERS,
    )


def course_timeline_queryset() -> QuerySet[Course]:
    return Course.objects.select_related(
        "patient", "protocol", "lead_practitioner"
    ).prefetch_related(
        Prefetch(
            "sessions",
            queryset=Session.objects.select_related("practitioner", "room")
            .prefetch_related(
                Prefetch(
                    "products",
                    queryset=SessionProduct.objects.select_related("product", "lot").order_by("id"),
                )
            )
            .order_by("scheduled_start"),
        )
    )


@dataclass
class Change:
    when: datetime
    who: str
    what: str
    reason: str
    changes: list[tuple[str, object, object]]


def course_history(course: Course) -> list[Change]:
    """Who changed the course, its sessions and their product lines, when, why and from what
    to what: newest first. Three queries."""
    entries = []
    for model, records in (
        (Course, course.history.select_related("history_user").order_by("history_date")),
        (
            Session,
            Session.history.filter(course_id=course.pk)
            .select_related("history_user")
            .order_by("id", "history_date"),
        ),
        (
            SessionProduct,
            SessionProduct.history.filter(session__course_id=course.pk)
            .select_related("history_user", "product", "lot")
            .order_by("id", "history_date"),
        ),
    ):
        previous = {}
        for record in records:
            before = previous.get(record.id)
            changes = []
            if before is not None:
                delta = record.diff_against(before, foreign_keys_are_objs=False)
                changes = [
                    (model._meta.get_field(c.field).verbose_name, c.old, c.new)
                    for c in delta.changes
                ]
            if model is Course:
                label = _("Course")
            elif model is Session:
                label = _("Session %(number)d") % {"number": record.number}
            else:
                label = _("Product line: %(product)s, lot %(lot)s") % {
                    "product": record.product,
                    "lot": record.lot.lot_number,
                }
            entries.append(
                Change(
                    when=record.history_date,
                    who=(record.history_user.get_full_name() or record.history_user.get_username())
                    if record.history_user
                    else _("system"),
                    what=label,
                    reason=record.history_change_reason or "",
                    changes=changes,
                )
            )
            previous[record.id] = record
    return sorted(entries, key=lambda entry: entry.when, reverse=True)


def usable_lots(*, on: date) -> QuerySet[Lot]:
    """The lots a practitioner may choose on a day, first expiry first."""
    return (
        Lot.objects.usable_on(on)
        .select_related("product")
        .order_by("product__name", "expiry_date", "id")
    )


def lot_recipients(*, lot: Lot) -> QuerySet[SessionProduct]:
    """Every patient and session that received a lot (lines voided by an amendment excluded):
    the recall list."""
    return (
        SessionProduct.objects.filter(lot=lot, voided_at__isnull=True)
        .select_related("session__course__patient", "session__practitioner", "product")
        .order_by("session__scheduled_start", "id")
    )


def course_progress(courses: QuerySet[Course]) -> QuerySet[Course]:
    return courses.annotate(done=Count("sessions", filter=Q(sessions__status="completed")))
