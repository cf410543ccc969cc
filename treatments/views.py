"""The practitioners' pages: my day, the session (safety, day-of questions, log and complete,
amend), the course's timeline; and the managers' recall list of a lot."""

from datetime import date, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from clinic.audit import access_record
from clinic.csv_export import csv_response
from clinic.forms import add_service_errors
from clinic.models import AccessEvent
from clinic.substances import SubstanceCategory
from inventory.models import Lot
from patients import services as patient_services
from patients.models import Patient, Screening
from patients.selectors import MESOTHERAPY_SUBSTANCES, last_answers, treatability, treatability_many

from . import selectors, services
from .dossier import dossier_labelled, patient_dossier
from .forms import AmendForm, DayOfQuestionsForm, ProductLineFormSet, SessionRecordForm
from .models import Session, SessionStatus, Technique
from .reminder_policy import LinkError
from .services import RECORD_FIELDS, ProductLine

PRACTICE = ("clinic.use_practice_pages", "treatments.view_session")
RECALL_ROWS_PER_PAGE = 100
COMPLETE = ("clinic.use_practice_pages", "treatments.change_session")


def _planned_categories(session: Session) -> list[str]:
    return [
        c for c in session.course.protocol.product_categories if c != SubstanceCategory.CONSUMABLE
    ] or sorted(MESOTHERAPY_SUBSTANCES)


@permission_required(PRACTICE, raise_exception=True)
def my_day(request: HttpRequest) -> HttpResponse:
    try:
        day = date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        day = timezone.localdate()
    sessions = list(selectors.day_sessions(practitioner=request.user, day=day))
    # Each patient is judged for what their course plans, all in one batch. (A patient with
    # two sessions on the day in different courses is judged for both courses' substances.)
    plans: dict[int, set[str]] = {}
    for session in sessions:
        plans.setdefault(session.course.patient_id, set()).update(_planned_categories(session))
    verdicts = treatability_many(
        patients=[s.course.patient for s in sessions], on=day, categories_of=plans
    )
    rows = [(session, verdicts[session.course.patient_id]) for session in sessions]
    return render(
        request,
        "treatments/my_day.html",
        {
            "day": day,
            "rows": rows,
            "previous": day - timedelta(days=1),
            "next": day + timedelta(days=1),
        },
    )


def _line_objects(formset) -> list[ProductLine]:
    lines = []
    for form in formset:
        data = form.cleaned_data
        if not data or not data.get("product"):
            continue
        lines.append(
            ProductLine(
                product=data["product"],
                quantity=data["quantity"],
                lot=data.get("lot"),
                volume_ml=data.get("volume_ml"),
                area=data.get("area") or "",
            )
        )
    return lines


def _record(form) -> dict:
    return {
        name: form.cleaned_data.get(name) for name in RECORD_FIELDS if name in form.cleaned_data
    }


@permission_required(PRACTICE, raise_exception=True)
def session_page(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(selectors.session_detail_queryset(), pk=pk)
    access_record(request, event=AccessEvent.RECORD_VIEWED, patient_id=session.course.patient_id)
    patient = session.course.patient
    day = timezone.localdate(session.scheduled_start)
    lots = selectors.usable_lots(on=day)
    action = request.POST.get("action") if request.method == "POST" else None
    day_form = DayOfQuestionsForm(
        request.POST if action == "questions" else None, prefix="day", initial=last_answers(patient)
    )
    record_form = SessionRecordForm(request.POST if action == "complete" else None, prefix="record")
    lines = ProductLineFormSet(
        request.POST if action == "complete" else None, prefix="lines", usable_lots=lots
    )
    if action and not request.user.has_perms(COMPLETE):
        return HttpResponse(status=403)
    if action == "questions" and day_form.is_valid():
        screening = Screening(
            patient=patient,
            taken_on=timezone.localdate(),
            **{**last_answers(patient), **day_form.cleaned_data},
        )
        patient_services.screening_record(screening=screening, actor=request.user)
        messages.success(request, _("Today's answers are recorded."))
        return redirect("treatments:session", pk=session.pk)
    if action == "complete" and record_form.is_valid() and lines.is_valid():
        try:
            services.session_complete(
                session=session,
                record=_record(record_form),
                lines=_line_objects(lines),
                acknowledged=request.POST.getlist("acknowledge"),
                actor=request.user,
            )
        except ValidationError as error:
            if getattr(error, "code", None) == "already_completed":
                messages.info(request, error.messages[0])
                return redirect("treatments:session", pk=session.pk)
            add_service_errors(record_form, error)
        else:
            messages.success(request, _("The session is completed and signed."))
            return redirect("treatments:session", pk=session.pk)
    safety = treatability(patient=patient, categories=_planned_categories(session), on=day)
    next_window = None
    if session.status == SessionStatus.COMPLETED:
        next_window = (
            day + timedelta(days=session.course.interval_min_days),
            services.propose_dates(
                start_date=day,
                sessions=2,
                interval_min_days=session.course.interval_min_days,
                interval_max_days=session.course.interval_max_days,
            )[1],
            day + timedelta(days=session.course.interval_max_days),
        )
    return render(
        request,
        "treatments/session.html",
        {
            "session": session,
            "patient": patient,
            "safety": safety,
            "day_form": day_form,
            "record_form": record_form,
            "lines": lines,
            "lots": lots,
            "can_complete": session.status
            in (SessionStatus.SCHEDULED, SessionStatus.CONFIRMED, SessionStatus.CHECKED_IN),
            "next_window": next_window,
            "techniques": Technique,
            "active_lines": [line for line in session.products.all() if line.voided_at is None],
        },
    )


@permission_required(COMPLETE, raise_exception=True)
def session_amend(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(Session.objects.select_related("course__patient"), pk=pk)
    access_record(request, event=AccessEvent.RECORD_VIEWED, patient_id=session.course.patient_id)
    day = timezone.localdate(session.scheduled_start)
    current = list(session.products.filter(voided_at__isnull=True).select_related("product", "lot"))
    initial_record = {name: getattr(session, name) for name in RECORD_FIELDS}
    initial_lines = [
        {
            "product": line.product,
            "lot": line.lot,
            "quantity": line.quantity,
            "volume_ml": line.volume_ml,
            "area": line.area,
        }
        for line in current
    ]
    lots = selectors.usable_lots(on=day) | Lot.objects.filter(
        pk__in=[line.lot_id for line in current]
    )
    post = request.POST if request.method == "POST" else None
    reason_form = AmendForm(post)
    record_form = SessionRecordForm(post, prefix="record", initial=initial_record)
    lines = ProductLineFormSet(post, prefix="lines", initial=initial_lines, usable_lots=lots)
    if post is not None and reason_form.is_valid() and record_form.is_valid() and lines.is_valid():
        changed = {
            name: value
            for name, value in _record(record_form).items()
            if value != initial_record[name]
        }
        try:
            services.session_amend(
                session=session,
                actor=request.user,
                reason=reason_form.cleaned_data["reason"],
                record=changed,
                lines=_line_objects(lines) if lines.has_changed() else None,
            )
        except ValidationError as error:
            add_service_errors(record_form, error)
        else:
            messages.success(request, _("The amendment is recorded."))
            return redirect("treatments:session", pk=session.pk)
    return render(
        request,
        "treatments/amend.html",
        {
            "session": session,
            "reason_form": reason_form,
            "record_form": record_form,
            "lines": lines,
        },
    )


@permission_required(PRACTICE, raise_exception=True)
def course_page(request: HttpRequest, pk: int) -> HttpResponse:
    course = get_object_or_404(selectors.course_timeline_queryset(), pk=pk)
    access_record(request, event=AccessEvent.RECORD_VIEWED, patient_id=course.patient_id)
    history = selectors.course_history(course)
    return render(request, "treatments/course.html", {"course": course, "history": history})


@permission_required(
    ("clinic.view_reports", "treatments.view_sessionproduct"), raise_exception=True
)
def lot_recall(request: HttpRequest, pk: int) -> HttpResponse:
    """Everyone who received a lot: for a recall, with what to contact them by."""
    lot = get_object_or_404(Lot.objects.select_related("product"), pk=pk)
    recipients = selectors.lot_recipients(lot=lot)
    if request.GET.get("format") == "csv":
        lines = list(recipients)
        return csv_response(
            filename=f"recall-{lot.lot_number}.csv",
            header=[
                _("Date"),
                _("Patient"),
                _("Date of birth"),
                _("Mobile phone"),
                _("Email"),
                _("Practitioner"),
                _("Quantity"),
                _("Session"),
            ],
            rows=[
                [
                    timezone.localtime(line.session.scheduled_start),
                    line.session.course.patient.full_name,
                    line.session.course.patient.date_of_birth,
                    str(line.session.course.patient.mobile_phone),
                    line.session.course.patient.email,
                    line.session.practitioner.get_full_name()
                    or line.session.practitioner.get_username(),
                    line.quantity,
                    line.session_id,
                ]
                for line in lines
            ],
        )
    # The screen shows a page at a time (a much used lot went to hundreds of sessions); the
    # CSV above has every line.
    page = Paginator(recipients, RECALL_ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "treatments/recall.html",
        {
            "lot": lot,
            "lines": page.object_list,
            "page": page,
            "page_query": "",
            "patients": recipients.aggregate(
                patients=Count("session__course__patient", distinct=True)
            )["patients"],
        },
    )


# The patient's links from a reminder. Public: the signed token is the only key. Opening a link
# only shows the appointment (mail scanners open links too); the button posts the change. No
# CSRF cookie is needed: a forged post would need the token, which is the secret itself, and
# some phones' in-app browsers drop cookies.


@login_not_required
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def appointment(request: HttpRequest, token: str, action: str) -> HttpResponse:
    """The confirm or the cancel link (`action` comes from the URL's name)."""
    language = services.appointment_language(token) or translation.get_language()
    with translation.override(language):
        context = {"action": action, "clinic_phone": settings.CLINIC_PHONE}
        try:
            session = services.appointment_from_link(token=token, action=action)
            done = None
            if request.method == "POST":
                if action == "confirm":
                    session, changed = services.appointment_confirm(token=token)
                    done = "confirmed" if changed else "already confirmed"
                else:
                    session = services.appointment_cancel(token=token)
                    done = "cancelled"
            elif action == "confirm" and session.status == SessionStatus.CONFIRMED:
                done = "already confirmed"
        except LinkError as error:
            return render(
                request,
                "treatments/appointment.html",
                {**context, "problem": str(error)},
                status=400,
            )
        # The response renders lazily: render it here, in the patient's language.
        return render(
            request,
            "treatments/appointment.html",
            {**context, "session": session, "done": done},
        )


# A patient's data export, for an access request: a JSON file and a printable page. Both go into
# the access log as exports of the record.


@permission_required("patients.change_patient", raise_exception=True)
def patient_export(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(Patient, pk=pk)
    access_record(request, event=AccessEvent.RECORD_EXPORTED, patient_id=patient.pk)
    response = JsonResponse(
        patient_dossier(patient), json_dumps_params={"ensure_ascii": False, "indent": 2}
    )
    response["Content-Disposition"] = f'attachment; filename="patient-{patient.pk}.json"'
    return response


@permission_required("patients.change_patient", raise_exception=True)
def patient_export_print(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(Patient, pk=pk)
    access_record(request, event=AccessEvent.RECORD_EXPORTED, patient_id=patient.pk)
    return render(
        request,
        "treatments/dossier.html",
        {"patient": patient, "dossier": dossier_labelled(patient_dossier(patient))},
    )
