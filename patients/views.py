from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.audit import access_record
from clinic.forms import add_service_errors
from clinic.models import AccessEvent

from . import selectors, services
from .forms import PatientSearchForm, ScreeningForm
from .models import Patient

SEARCH_RESULTS_LIMIT = 50
PRACTICE_PERMISSIONS = ("clinic.use_practice_pages", "patients.view_patient")


@permission_required(PRACTICE_PERMISSIONS, raise_exception=True)
def patient_search(request: HttpRequest) -> HttpResponse:
    form = PatientSearchForm(request.GET or None)
    patients = None
    if form.is_valid() and form.cleaned_data["q"].strip():
        found = selectors.patients_matching(form.cleaned_data["q"])
        patients = [
            (patient, selectors.consent_states(patient))
            for patient in selectors.patients_with_safety_flags(found)[:SEARCH_RESULTS_LIMIT]
        ]
    return render(
        request,
        "patients/search.html",
        {
            "form": form,
            "patients": patients,
            "limit": SEARCH_RESULTS_LIMIT,
        },
    )


@permission_required(PRACTICE_PERMISSIONS, raise_exception=True)
def patient_safety(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(selectors.patients_with_safety_flags(), pk=pk)
    access_record(request, event=AccessEvent.RECORD_VIEWED, patient_id=patient.pk)
    today = timezone.localdate()
    return render(
        request,
        "patients/safety.html",
        {
            "patient": patient,
            "age": patient.age_on(today),
            "checks": selectors.safety_overview(patient=patient, on=today),
            "consent_states": selectors.consent_states(patient),
            "consents": patient.consents.all(),
            "screenings": patient.screenings.select_related("recorded_by")[:5],
        },
    )


@permission_required(("clinic.use_practice_pages", "patients.add_screening"), raise_exception=True)
def screening_record(request: HttpRequest, pk: int) -> HttpResponse:
    """Asks the contraindication questions again, starting from the last answers."""
    patient = get_object_or_404(Patient, pk=pk)
    access_record(request, event=AccessEvent.RECORD_VIEWED, patient_id=patient.pk)
    form = ScreeningForm(request.POST or None, initial=selectors.last_answers(patient))
    if request.method == "POST" and form.is_valid():
        screening = form.save(commit=False)
        screening.patient = patient
        try:
            services.screening_record(screening=screening, actor=request.user)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("The screening is recorded."))
            return redirect("patients:safety", pk=patient.pk)
    return render(request, "patients/screening.html", {"patient": patient, "form": form})


@permission_required("clinic.view_reports", raise_exception=True)
def records_report(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    return render(
        request,
        "patients/records_report.html",
        {
            "readiness": selectors.record_readiness(on=today),
            "on": today,
        },
    )
