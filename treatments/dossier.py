"""Everything the clinic holds on one patient, for an access request (GDPR art. 15): the record,
screenings, consents, courses with their sessions, what was injected from which lot, the
reminders sent, and who has looked at or taken the record. Built here because the treatments
app is the one that may read both patients and its own records (DESIGN: imports point one way).
"""

from datetime import date, datetime
from decimal import Decimal

from django.db import models
from django.utils import timezone

from clinic.models import AccessLog
from patients.models import Patient

from .models import Course, Reminder, Session, SessionProduct

LEFT_OUT = {"name_key"}
NESTED = {
    "sessions",
    "products",
    "reminders",
}  # a search key derived from the name, not information in itself


def _value(value):
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, dict, bool, int, float)) or value is None:
        return value
    return str(value)


def _fields(obj: models.Model, *, skip: tuple[str, ...] = ()) -> dict:
    """Every stored field, labelled as staff see it; a related record by its name, not its id."""
    row = {}
    for field in obj._meta.concrete_fields:
        if field.name in LEFT_OUT or field.name in skip:
            continue
        if field.is_relation:
            related = getattr(obj, field.name)
            row[field.name] = str(related) if related is not None else None
        elif field.choices:
            row[field.name] = (
                getattr(obj, f"get_{field.name}_display")() if getattr(obj, field.name) else ""
            )
        else:
            row[field.name] = _value(getattr(obj, field.name))
    return row


def patient_dossier(patient: Patient) -> dict:
    screenings = patient.screenings.select_related("recorded_by").order_by("taken_on", "id")
    consents = patient.consents.select_related("recorded_by").order_by("signed_at", "id")
    courses = (
        Course.objects.filter(patient=patient)
        .select_related("protocol", "lead_practitioner")
        .order_by("start_date", "id")
    )
    sessions = (
        Session.objects.filter(course__patient=patient)
        .select_related("course__protocol", "practitioner", "room", "signed_by", "screening")
        .order_by("scheduled_start", "id")
    )
    lines = (
        SessionProduct.objects.filter(session__course__patient=patient)
        .select_related("product", "lot", "movement", "session")
        .order_by("session_id", "id")
    )
    reminders = Reminder.objects.filter(session__course__patient=patient).order_by("due_at", "id")
    lines_by_session: dict[int, list] = {}
    for line in lines:
        lines_by_session.setdefault(line.session_id, []).append(
            _fields(line, skip=("session", "movement")) | {"lot": line.lot.lot_number}
        )
    reminders_by_session: dict[int, list] = {}
    for reminder in reminders:
        reminders_by_session.setdefault(reminder.session_id, []).append(
            _fields(reminder, skip=("session", "enqueued_at", "claimed_at"))
        )
    sessions_by_course: dict[int, list] = {}
    for session in sessions:
        sessions_by_course.setdefault(session.course_id, []).append(
            _fields(session, skip=("course",))
            | {
                "products": lines_by_session.get(session.pk, []),
                "reminders": reminders_by_session.get(session.pk, []),
            }
        )
    return {
        "exported_at": timezone.localtime().isoformat(),
        "patient": _fields(patient),
        "screenings": [_fields(s, skip=("patient",)) for s in screenings],
        "consents": [_fields(c, skip=("patient",)) for c in consents],
        "courses": [
            _fields(course, skip=("patient",)) | {"sessions": sessions_by_course.get(course.pk, [])}
            for course in courses
        ],
        "access_log": [
            _fields(entry, skip=("patient_id", "user_id"))
            for entry in AccessLog.objects.filter(patient_id=patient.pk).order_by("at", "id")
        ],
    }


def _labels() -> dict[str, str]:
    from patients.models import Consent, Screening

    models_shown = (
        Patient,
        Screening,
        Consent,
        Course,
        Session,
        SessionProduct,
        Reminder,
        AccessLog,
    )
    return {
        field.name: str(field.verbose_name)
        for model in models_shown
        for field in model._meta.concrete_fields
    }


def dossier_labelled(dossier: dict) -> dict:
    """The same content with the field names staff read on the forms, for the printable page."""
    labels = _labels()

    def label(row: dict) -> list[tuple[str, object]]:
        return [
            (
                labels.get(name, name),
                ", ".join(map(str, value)) if isinstance(value, list) else value,
            )
            for name, value in row.items()
            if name not in NESTED
        ]

    return {
        "exported_at": dossier["exported_at"],
        "patient": label(dossier["patient"]),
        "screenings": [label(row) for row in dossier["screenings"]],
        "consents": [label(row) for row in dossier["consents"]],
        "courses": [
            {
                "fields": label(course),
                "sessions": [
                    {
                        "fields": label(session),
                        "products": [label(line) for line in session["products"]],
                        "reminders": [label(reminder) for reminder in session["reminders"]],
                    }
                    for session in course["sessions"]
                ],
            }
            for course in dossier["courses"]
        ],
        "access_log": [label(entry) for entry in dossier["access_log"]],
    }
