"""Courses and sessions: planning, booking, moving, cancelling, completing and amending. Each
service is atomic and takes the acting user; stock moves only through inventory's services and
the patient's safety only through patients.selectors.treatability."""

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.substances import SubstanceCategory
from inventory import services as stock
from inventory.models import Lot, Product
from patients.models import Patient
from patients.selectors import treatability

from ..exceptions import DoubleBooking, NotTreatable
from .reminders import reminders_cancel, reminders_plan, reminders_replan

__all__ = ["DoubleBooking", "NotTreatable", "ValidationError"]
from ..models import (
    TRANSITIONS,
    Course,
    CourseStatus,
    Protocol,
    Room,
    Session,
    SessionProduct,
    SessionStatus,
    Technique,
)

# The usual depth of each technique, in mm: intradermal techniques stay within a few
# millimetres; only linear retrograde threads deeper, up to the needle's length.
TECHNIQUE_DEPTH_MM = {
    Technique.NAPPAGE: (Decimal("0.3"), Decimal("2")),
    Technique.PAPULES: (Decimal("0.5"), Decimal("2")),
    Technique.POINT_BY_POINT: (Decimal("1"), Decimal("4")),
    Technique.INJECTOR: (Decimal("0.3"), Decimal("4")),
    Technique.LINEAR_RETROGRADE: (Decimal("2"), Decimal("13")),
}
PRP_FIELDS = (
    "prp_blood_ml",
    "prp_centrifuge_rpm",
    "prp_centrifuge_minutes",
    "prp_minutes_to_injection",
)
RECORD_FIELDS = (
    "areas",
    "technique",
    "needle_gauge",
    "needle_length_mm",
    "depth_mm",
    "anaesthetic_cream",
    "anaesthetic_minutes",
    *PRP_FIELDS,
    "erythema",
    "oedema",
    "bruising",
    "persistent_papules",
    "pain_score",
    "vasovagal_reaction",
    "infection_signs",
    "adverse_other",
    "aftercare_given",
    "photos_taken",
    "clinical_notes",
)


# Planning


def propose_dates(
    *, start_date: date, sessions: int, interval_min_days: int, interval_max_days: int
) -> list[date]:
    """One date per session, each the middle of the window after the one before; a Sunday
    moves to the Monday when that stays inside the window."""
    step = (interval_min_days + interval_max_days) // 2
    dates = [start_date]
    for _n in range(1, sessions):
        proposed = dates[-1] + timedelta(days=step)
        if proposed.weekday() == 6 and step + 1 <= interval_max_days:
            proposed += timedelta(days=1)
        dates.append(proposed)
    return dates


def window_warnings(course: Course, days: list[date]) -> list[str]:
    """A message for each date outside the course's interval window after the one before.
    Allowed (each patient's timetable is their own) but shown."""
    warnings = []
    for number, (before, after) in enumerate(itertools.pairwise(days), start=2):
        gap = (after - before).days
        if not course.interval_min_days <= gap <= course.interval_max_days:
            warnings.append(
                _(
                    "Session %(number)d is %(gap)d days after the one before; the course asks for "
                    "%(min)d to %(max)d."
                )
                % {
                    "number": number,
                    "gap": gap,
                    "min": course.interval_min_days,
                    "max": course.interval_max_days,
                }
            )
    return warnings


@transaction.atomic
def course_plan(
    *,
    patient: Patient,
    protocol: Protocol,
    lead_practitioner: AbstractBaseUser,
    start_date: date,
    actor: AbstractBaseUser,
    notes: str = "",
) -> Course:
    """A new course from a protocol; its numbers are copied so the protocol can change later."""
    if not protocol.active:
        raise ValidationError({"protocol": _("This protocol is no longer in use.")})
    course = Course(
        patient=patient,
        protocol=protocol,
        lead_practitioner=lead_practitioner,
        indication=protocol.indication,
        planned_sessions=protocol.sessions,
        interval_min_days=protocol.interval_min_days,
        interval_max_days=protocol.interval_max_days,
        start_date=start_date,
        notes=notes,
    )
    course.full_clean()
    course._history_user = actor
    course.save()
    return course


@transaction.atomic
def course_close(
    *, course: Course, actor: AbstractBaseUser, cancelled: bool, reason: str
) -> Course:
    """Ends a course: completed (its sessions done) or cancelled (with a reason). Sessions still
    booked are cancelled by the clinic with the same reason."""
    course = Course.objects.select_for_update().get(pk=course.pk)
    if course.status in (CourseStatus.COMPLETED, CourseStatus.CANCELLED):
        raise ValidationError(
            _("This course is already %(status)s.")
            % {"status": course.get_status_display().lower()}
        )
    if not reason.strip():
        raise ValidationError({"status_reason": _("Say why the course ends.")})
    open_sessions = course.sessions.filter(
        status__in=[SessionStatus.SCHEDULED, SessionStatus.CONFIRMED, SessionStatus.CHECKED_IN]
    )
    if not cancelled and open_sessions.filter(status=SessionStatus.CHECKED_IN).exists():
        raise ValidationError(_("A session of this course is in progress; complete it first."))
    for session in open_sessions:
        session_set_status(
            session=session, status=SessionStatus.CANCELLED_BY_CLINIC, actor=actor, reason=reason
        )
    course.status = CourseStatus.CANCELLED if cancelled else CourseStatus.COMPLETED
    course.status_reason = reason.strip()
    course._history_user, course._change_reason = actor, reason.strip()
    course.save(update_fields=["status", "status_reason"])
    return course


# Booking


def _lock_calendars(practitioner_id: int, room_id: int) -> None:
    """Serialises bookings of the same practitioner or room: the practitioner's user row, then
    the room's row, always in that order."""
    get_user_model().objects.select_for_update().filter(pk=practitioner_id).exists()
    Room.objects.select_for_update().filter(pk=room_id).exists()


def _refuse_non_practitioner(practitioner) -> None:
    if not practitioner.has_perm("clinic.use_practice_pages"):
        raise ValidationError(
            {
                "practitioner": _("%(who)s is not a practitioner.")
                % {"who": practitioner.get_full_name() or practitioner}
            }
        )


def _refuse_overlap(
    *, start: datetime, end: datetime, practitioner, room, exclude: int | None = None
) -> None:
    if end <= start:
        raise ValidationError({"scheduled_end": _("The session must end after it starts.")})
    clashes = Session.objects.occupying().overlapping(start, end).exclude(pk=exclude)
    if clashes.filter(practitioner=practitioner).exists():
        raise DoubleBooking(
            _("%(who)s already has a session at that time.")
            % {"who": practitioner.get_full_name() or practitioner}
        )
    if clashes.filter(room=room).exists():
        raise DoubleBooking(_("%(room)s is already booked at that time.") % {"room": room})


def check_free(
    *, session: Session, start: datetime, end: datetime, practitioner, room: Room
) -> None:
    """The check a booking form runs to show a clash on the form; the services run it again
    under their locks."""
    _refuse_overlap(start=start, end=end, practitioner=practitioner, room=room, exclude=session.pk)


def _save_session(
    session: Session, actor: AbstractBaseUser, reason: str, fields: list[str] | None = None
) -> Session:
    session._history_user = actor
    session._change_reason = reason
    try:
        with transaction.atomic():
            session.save(update_fields=fields)
    except IntegrityError as error:
        # The database's own guard (PostgreSQL's exclusion constraints) caught a clash the
        # locks did not see: say so as the lock-protected check would.
        if "not_double_booked" in str(error):
            raise DoubleBooking(_("That time is no longer free; choose another.")) from error
        if "session_number_in_course" in str(error):
            raise ValidationError(
                {
                    "number": _(
                        "Session %(number)d of this course was just booked by someone else."
                    )
                    % {"number": session.number}
                }
            ) from error
        raise
    return session


@transaction.atomic
def session_book(
    *,
    course: Course,
    number: int,
    start: datetime,
    end: datetime,
    practitioner: AbstractBaseUser,
    room: Room,
    actor: AbstractBaseUser,
) -> Session:
    """Books one session of a course. Refuses a time when the practitioner or the room is
    already taken, even when two people book at the same moment."""
    if course.status in (CourseStatus.COMPLETED, CourseStatus.CANCELLED):
        raise ValidationError(
            _("This course is %(status)s; book in a new course.")
            % {"status": course.get_status_display().lower()}
        )
    _refuse_non_practitioner(practitioner)
    _lock_calendars(practitioner.pk, room.pk)
    _refuse_overlap(start=start, end=end, practitioner=practitioner, room=room)
    session = Session(
        course=course,
        number=number,
        scheduled_start=start,
        scheduled_end=end,
        practitioner=practitioner,
        room=room,
    )
    session.full_clean(exclude=["course", "practitioner", "room"], validate_constraints=False)
    if Session.objects.occupying().filter(course=course, number=number).exists():
        raise ValidationError(
            {
                "number": _("Session %(number)d of this course is already booked.")
                % {"number": number}
            }
        )
    session = _save_session(session, actor, _("Booked"))
    reminders_plan(session=session)
    return session


@transaction.atomic
def session_move(
    *,
    session: Session,
    start: datetime,
    end: datetime,
    actor: AbstractBaseUser,
    practitioner: AbstractBaseUser | None = None,
    room: Room | None = None,
    reason: str = "",
) -> Session:
    session = Session.objects.select_for_update().get(pk=session.pk)
    if session.status not in (SessionStatus.SCHEDULED, SessionStatus.CONFIRMED):
        raise ValidationError(
            _("A %(status)s session cannot be moved.")
            % {"status": session.get_status_display().lower()}
        )
    practitioner = practitioner or session.practitioner
    room = room or session.room
    if practitioner.pk != session.practitioner_id:
        _refuse_non_practitioner(practitioner)
    _lock_calendars(practitioner.pk, room.pk)
    _refuse_overlap(start=start, end=end, practitioner=practitioner, room=room, exclude=session.pk)
    moved = start != session.scheduled_start
    if (start, end) != (session.scheduled_start, session.scheduled_end):
        # A confirmation was for the old time.
        session.status = SessionStatus.SCHEDULED
    session.scheduled_start, session.scheduled_end = start, end
    session.practitioner, session.room = practitioner, room
    session = _save_session(
        session,
        actor,
        reason or _("Moved"),
        ["scheduled_start", "scheduled_end", "practitioner", "room", "status"],
    )
    if moved:
        reminders_replan(session=session, reason=_("The session was moved."))
    return session


@transaction.atomic
def session_set_status(
    *, session: Session, status: str, actor: AbstractBaseUser, reason: str = ""
) -> Session:
    """Moves a session along its allowed transitions only (completing has its own service)."""
    session = Session.objects.select_for_update().get(pk=session.pk)
    if status == SessionStatus.COMPLETED:
        raise ValidationError(_("A session is completed by logging and signing it."))
    if status not in TRANSITIONS[session.status]:
        raise ValidationError(
            _("A %(old)s session cannot become %(new)s.")
            % {
                "old": session.get_status_display().lower(),
                "new": SessionStatus(status).label.lower(),
            }
        )
    if (
        status in (SessionStatus.CANCELLED_BY_PATIENT, SessionStatus.CANCELLED_BY_CLINIC)
        and not reason.strip()
    ):
        raise ValidationError({"status_reason": _("Say why the session is cancelled.")})
    session.status = status
    session.status_reason = reason.strip()
    session = _save_session(
        session, actor, reason.strip() or session.get_status_display(), ["status", "status_reason"]
    )
    if status not in (SessionStatus.SCHEDULED, SessionStatus.CONFIRMED):
        reminders_cancel(
            session=session,
            reason=_("The session is %(status)s.")
            % {"status": session.get_status_display().lower()},
        )
    return session


def session_cancel(
    *, session: Session, by_patient: bool, reason: str, actor: AbstractBaseUser
) -> Session:
    status = SessionStatus.CANCELLED_BY_PATIENT if by_patient else SessionStatus.CANCELLED_BY_CLINIC
    return session_set_status(session=session, status=status, actor=actor, reason=reason)


# The record


@dataclass(frozen=True)
class ProductLine:
    """A product line as the practitioner logs it. Without a lot, the first-expiring usable lot
    is taken (and a quantity that spans two lots becomes two lines)."""

    product: Product
    quantity: Decimal
    lot: Lot | None = None
    volume_ml: Decimal | None = None
    area: str = ""


def _check_record(record: dict, lines: list[ProductLine]) -> None:
    errors: dict[str, list[str]] = {}

    def error(field, message):
        errors.setdefault(field, []).append(message)

    technique, depth = record.get("technique"), record.get("depth_mm")
    length = record.get("needle_length_mm")
    if depth is not None:
        if length is not None and depth > length:
            error(
                "depth_mm",
                _("The depth (%(depth)s mm) is more than the needle's length (%(length)s mm).")
                % {"depth": depth, "length": length},
            )
        if technique in TECHNIQUE_DEPTH_MM:
            low, high = TECHNIQUE_DEPTH_MM[technique]
            if not low <= depth <= high:
                error(
                    "depth_mm",
                    _("%(technique)s is done at %(low)s to %(high)s mm, not %(depth)s mm.")
                    % {
                        "technique": Technique(technique).label,
                        "low": low,
                        "high": high,
                        "depth": depth,
                    },
                )
    if record.get("anaesthetic_minutes") and not record.get("anaesthetic_cream"):
        error("anaesthetic_minutes", _("Minutes of cream are given but no cream was applied."))
    uses_prp = any(line.product.category == SubstanceCategory.PRP for line in lines)
    prp_given = [name for name in PRP_FIELDS if record.get(name) not in (None, "")]
    if prp_given and not uses_prp:
        error("prp_blood_ml", _("A PRP block needs a PRP kit among the products."))
    if uses_prp and len(prp_given) < len(PRP_FIELDS):
        error(
            "prp_blood_ml",
            _(
                "With a PRP kit, record the blood drawn, the centrifuge's speed "
                "and minutes, and the minutes from draw to injection."
            ),
        )
    for line in lines:
        if line.lot is not None and line.lot.product_id != line.product.pk:
            error(
                "products",
                _("Lot %(lot)s is not a lot of %(product)s.")
                % {"lot": line.lot.lot_number, "product": line.product},
            )
        if line.product.single_use and line.quantity != line.quantity.to_integral_value():
            error(
                "products",
                _("%(product)s is single use: log whole units (a kit serves one patient).")
                % {"product": line.product},
            )
    if errors:
        raise ValidationError(errors)


def _categories(lines: list[ProductLine], record: dict) -> set[str]:
    categories = {line.product.category for line in lines} - {SubstanceCategory.CONSUMABLE}
    if record.get("anaesthetic_cream"):
        categories.add(SubstanceCategory.ANAESTHETIC)
    return categories


def _same_stock(current: list[SessionProduct], lines: list[ProductLine]) -> bool:
    """The new lines take the same product, lot and quantity as the current ones, in order."""
    return len(current) == len(lines) and all(
        (old.product_id, old.lot_id, old.quantity)
        == (new.product.pk, new.lot.pk if new.lot else None, new.quantity)
        for old, new in zip(current, lines, strict=True)
    )


def _consume(
    session: Session, lines: list[ProductLine], actor: AbstractBaseUser, reason: str = ""
) -> list[SessionProduct]:
    """Takes the stock for each line, having first locked every lot it may touch in the app's
    lock order (inventory.services.stock_lock)."""
    day = timezone.localdate(session.scheduled_start)
    stock.stock_lock(
        lots=[line.lot for line in lines if line.lot is not None],
        products=[line.product for line in lines if line.lot is None],
        on=day,
    )
    written = []
    for line in lines:
        reference = f"session {session.pk}"
        if line.lot is not None:
            movements = [
                stock.stock_consume_from_lot(
                    lot=line.lot, quantity=line.quantity, on=day, actor=actor, reference=reference
                )
            ]
        else:
            movements = stock.stock_consume(
                product=line.product,
                quantity=line.quantity,
                on=day,
                actor=actor,
                reference=reference,
            )
        for movement in movements:
            product_line = SessionProduct(
                session=session,
                product=line.product,
                lot=movement.lot,
                quantity=-movement.quantity,
                volume_ml=line.volume_ml,
                area=line.area,
                movement=movement,
            )
            product_line._history_user = actor
            product_line._change_reason = reason or _("Completed and signed")
            product_line.save()
            written.append(product_line)
    return written


@transaction.atomic
def session_complete(
    *,
    session: Session,
    record: dict,
    lines: list[ProductLine],
    acknowledged: list[str],
    actor: AbstractBaseUser,
) -> Session:
    """Logs what was done, takes the stock and signs, in one transaction: any refusal leaves
    nothing written. A second submission of the same form finds the session completed and is
    refused, so a session completes once."""
    session = (
        Session.objects.select_for_update().select_related("course__patient").get(pk=session.pk)
    )
    if session.status == SessionStatus.COMPLETED:
        raise ValidationError(
            _("This session was already completed and signed."), code="already_completed"
        )
    if session.status not in (
        SessionStatus.SCHEDULED,
        SessionStatus.CONFIRMED,
        SessionStatus.CHECKED_IN,
    ):
        raise ValidationError(
            _("A %(status)s session cannot be completed.")
            % {"status": session.get_status_display().lower()}
        )
    unknown = set(record) - set(RECORD_FIELDS)
    if unknown:
        raise ValueError(f"Not part of the record: {', '.join(sorted(unknown))}")
    day = timezone.localdate(session.scheduled_start)
    if day > timezone.localdate():
        raise ValidationError(
            _("This session is on %(day)s: it cannot be completed before then.")
            % {"day": day.strftime("%d/%m/%Y")}
        )
    _check_record(record, lines)
    safety = treatability(
        patient=session.course.patient, categories=_categories(lines, record), on=day
    )
    if safety.hard_stops:
        raise NotTreatable([finding.message for finding in safety.hard_stops], code="hard_stop")
    missing = [f.message for f in safety.warnings if f.code not in set(acknowledged)]
    if missing:
        raise NotTreatable(
            [_("Acknowledge: %(warning)s") % {"warning": message} for message in missing],
            code="unacknowledged",
        )
    _consume(session, lines, actor)
    for name, value in record.items():
        setattr(session, name, value)
    session.screening = safety.screening
    session.acknowledged_warnings = sorted(f.code for f in safety.warnings)
    session.status = SessionStatus.COMPLETED
    session.signed_by, session.signed_at = actor, timezone.now()
    session.full_clean(exclude=["course", "practitioner", "room"], validate_constraints=False)
    _save_session(session, actor, _("Completed and signed"))
    reminders_cancel(session=session, reason=_("The session is completed."))
    course = Course.objects.select_for_update().get(pk=session.course_id)
    if course.status == CourseStatus.PLANNED:
        course.status = CourseStatus.ACTIVE
        course._history_user, course._change_reason = actor, _("First session completed")
        course.save(update_fields=["status"])
    return session


@transaction.atomic
def session_amend(
    *,
    session: Session,
    actor: AbstractBaseUser,
    reason: str,
    record: dict | None = None,
    lines: list[ProductLine] | None = None,
) -> Session:
    """Corrects a signed session. The reason goes into the history beside the old values; new
    product lines void the old ones, whose stock is put back, and take stock again."""
    if not reason.strip():
        raise ValidationError({"reason": _("An amendment needs a reason.")})
    session = Session.objects.select_for_update().get(pk=session.pk)
    if session.status != SessionStatus.COMPLETED:
        raise ValidationError(_("Only a completed, signed session is amended."))
    record = record or {}
    unknown = set(record) - set(RECORD_FIELDS)
    if unknown:
        raise ValueError(f"Not part of the record: {', '.join(sorted(unknown))}")
    current_lines = list(
        session.products.filter(voided_at__isnull=True).select_related("product", "lot", "movement")
    )
    merged = {name: getattr(session, name) for name in RECORD_FIELDS} | record
    new_lines = (
        lines
        if lines is not None
        else [
            ProductLine(product=line.product, quantity=line.quantity, lot=line.lot)
            for line in current_lines
        ]
    )
    _check_record(merged, new_lines)
    reason = reason.strip()
    if lines is not None and _same_stock(current_lines, lines):
        # Only the area or volume changed: corrected in place, the stock is right as it is
        # (and the lot may since have been recalled, which must not block the correction).
        for line, new in zip(current_lines, lines, strict=True):
            line.area, line.volume_ml = new.area, new.volume_ml
            line._history_user, line._change_reason = actor, reason
            line.save(update_fields=["area", "volume_ml"])
    elif lines is not None:
        stock.stock_lock(
            lots=[line.lot for line in current_lines]
            + [line.lot for line in lines if line.lot is not None],
            products=[line.product for line in lines if line.lot is None],
            on=timezone.localdate(session.scheduled_start),
        )
        now = timezone.now()
        for line in current_lines:
            stock.movement_reverse(movement=line.movement, actor=actor, reason=reason)
            line.voided_at, line.void_reason = now, reason
            line._history_user, line._change_reason = actor, reason
            line.save(update_fields=["voided_at", "void_reason"])
        _consume(session, lines, actor, reason=reason)
    for name, value in record.items():
        setattr(session, name, value)
    session.full_clean(exclude=["course", "practitioner", "room"], validate_constraints=False)
    return _save_session(session, actor, reason.strip())
