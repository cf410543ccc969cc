from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from clinic.admin import PatientRecordAdmin, ReadOnlyAdmin
from clinic.forms import add_service_errors

from . import selectors, services
from .forms import ConsentWithdrawForm, PatientAdminForm, ScreeningInlineForm
from .models import Consent, ConsentKind, Patient, Screening


class AddOnlyInline:
    """Existing rows are shown read-only and never deleted; new rows go through a service."""

    can_delete = False
    extra = 1
    show_change_link = False

    def has_change_permission(self, request, obj=None):
        return False


class ScreeningInline(AddOnlyInline, admin.StackedInline):
    model = Screening
    form = ScreeningInlineForm
    readonly_fields = ["recorded_by", "recorded_at"]
    verbose_name_plural = _("screenings (a correction is a new screening)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("recorded_by")


class ConsentInline(AddOnlyInline, admin.TabularInline):
    model = Consent
    fields = ["kind", "form_version", "signed_at", "state", "recorded_by", "withdraw_link"]
    readonly_fields = ["state", "recorded_by", "withdraw_link"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("recorded_by")

    @admin.display(description=_("state"))
    def state(self, consent):
        if consent.pk is None:
            return "-"
        if consent.withdrawn_at:
            return format_html(
                '<strong class="consent-withdrawn">{}</strong> {}',
                _("Withdrawn"),
                timezone.localtime(consent.withdrawn_at).strftime("%d/%m/%Y"),
            )
        return _("In force")

    @admin.display(description="")
    def withdraw_link(self, consent):
        if consent.pk is None or consent.withdrawn_at:
            return ""
        url = reverse("admin:patients_consent_withdraw", args=[consent.pk])
        return format_html('<a href="{}">{}</a>', url, _("Withdraw…"))


class TreatmentConsentFilter(admin.SimpleListFilter):
    title = _("treatment consent")
    parameter_name = "consent"

    def lookups(self, request, model_admin):
        return [
            ("missing", _("No mesotherapy consent in force")),
            ("in_force", _("Mesotherapy consent in force")),
        ]

    def queryset(self, request, queryset):
        if self.value() not in ("missing", "in_force"):
            return queryset
        in_force = selectors.has_consent_in_force(
            kind=ConsentKind.MESOTHERAPY, on=timezone.localdate()
        )
        return queryset.filter(in_force if self.value() == "in_force" else ~in_force)


class ScreeningFilter(admin.SimpleListFilter):
    title = _("screening")
    parameter_name = "screening"

    def lookups(self, request, model_admin):
        return [("current", _("Current")), ("stale", _("Out of date or missing"))]

    def queryset(self, request, queryset):
        if self.value() not in ("current", "stale"):
            return queryset
        current = selectors.has_current_screening(on=timezone.localdate())
        return queryset.filter(current if self.value() == "current" else ~current)


@admin.register(Patient)
class PatientAdmin(PatientRecordAdmin):
    form = PatientAdminForm
    list_display = [
        "family_name",
        "given_name",
        "date_of_birth",
        "mobile_phone",
        "consents_at_a_glance",
        "last_screening",
    ]
    list_display_links = ["family_name", "given_name"]
    list_filter = [
        TreatmentConsentFilter,
        ScreeningFilter,
        "sex",
        "preferred_channel",
        "reminders_opt_out",
        "fitzpatrick_type",
        "glogau_type",
    ]
    search_fields = ["family_name", "given_name", "email"]
    search_help_text = _("Name, mobile phone, email or date of birth (31/12/1980).")
    readonly_fields = ["safety_summary", "created_at", "updated_at"]
    inlines = [ConsentInline, ScreeningInline]
    list_per_page = 50

    class Media:
        css = {"all": ["clinic/clinic.css"]}

    fieldsets = [
        (None, {"fields": ["safety_summary"]}),
        (
            _("Identity"),
            {
                "fields": [
                    ("given_name", "family_name"),
                    ("date_of_birth", "sex"),
                    "confirm_duplicate",
                ]
            },
        ),
        (
            _("Contact and reminders"),
            {
                "fields": [
                    ("email", "mobile_phone"),
                    ("preferred_channel", "preferred_language"),
                    "reminders_opt_out",
                    "address_line",
                    ("postal_code", "city"),
                ]
            },
        ),
        (_("Skin"), {"fields": [("fitzpatrick_type", "glogau_type"), "notes"]}),
        (_("Record"), {"fields": [("created_at", "updated_at")], "classes": ["collapse"]}),
    ]

    def patient_id_of(self, patient):
        return patient.pk

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if match is not None and match.url_name == "patients_patient_changelist":
            # What the list's columns show, for the whole page in two queries; one patient's
            # page reads its consents and screenings for its own sections.
            return selectors.patients_with_safety_flags(queryset)
        return queryset

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, ScreeningInline) and obj is not None and obj.pk:
            # A new screening starts from the last answers, so a known allergy or condition
            # is not lost by a routine re-screen that forgets to tick it again.
            kwargs["initial"] = [selectors.last_answers(obj)]
        return kwargs

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return selectors.patients_matching(search_term, queryset), False

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets[1:-1]  # no safety summary or record dates before it exists
        return fieldsets

    @admin.display(description=_("consents"))
    def consents_at_a_glance(self, patient):
        return format_html_join(
            " ",
            '<span class="consent-{}" title="{}: {}">{} {}</span>',
            (
                (s.state, s.label, s.state_label, s.mark, s.short_label)
                for s in selectors.consent_states(patient)
            ),
        )

    @admin.display(description=_("last screening"), ordering="last_screening_on")
    def last_screening(self, patient):
        return patient.last_screening_on or format_html("<strong>{}</strong>", _("none"))

    @admin.display(description=_("safety today"))
    def safety_summary(self, patient):
        if patient.pk is None:
            return "-"
        return render_to_string(
            "patients/_safety_summary.html",
            {
                "checks": selectors.safety_overview(patient=patient, on=timezone.localdate()),
            },
        )

    def save_model(self, request, obj, form, change):
        confirm = form.cleaned_data.get("confirm_duplicate", False)
        if change:
            services.patient_update(patient=obj, actor=request.user, confirm_duplicate=confirm)
        else:
            services.patient_register(patient=obj, actor=request.user, confirm_duplicate=confirm)

    def save_formset(self, request, form, formset, change):
        for instance in formset.save(commit=False):
            if isinstance(instance, Screening):
                services.screening_record(screening=instance, actor=request.user)
            elif isinstance(instance, Consent):
                services.consent_record(consent=instance, actor=request.user)
        formset.save_m2m()


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin, PatientRecordAdmin):
    # Consents are recorded on the patient's page and withdrawn from their own.
    list_display = ["patient", "kind", "form_version", "signed_at", "withdrawn_at", "recorded_by"]
    list_filter = ["kind", ("withdrawn_at", admin.EmptyFieldListFilter), "signed_at"]
    list_select_related = ["patient", "recorded_by"]
    search_fields = ["patient__family_name", "patient__given_name", "form_version"]
    autocomplete_fields = ["patient"]
    date_hierarchy = "signed_at"

    def patient_id_of(self, consent):
        return consent.patient_id

    def get_urls(self):
        return [
            path(
                "<int:consent_id>/withdraw/",
                self.admin_site.admin_view(self.withdraw_view),
                name="patients_consent_withdraw",
            ),
            *super().get_urls(),
        ]

    def withdraw_view(self, request, consent_id):
        if not request.user.has_perm("patients.change_consent"):
            raise PermissionDenied
        consent = get_object_or_404(Consent.objects.select_related("patient"), pk=consent_id)
        patient_url = reverse("admin:patients_patient_change", args=[consent.patient_id])
        form = ConsentWithdrawForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.consent_withdraw(
                    consent=consent,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    withdrawn_at=form.cleaned_data["withdrawn_at"],
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                self.message_user(
                    request, _("The consent is recorded as withdrawn."), messages.SUCCESS
                )
                return redirect(patient_url)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Withdraw consent"),
            "consent": consent,
            "form": form,
            "opts": self.opts,
            "patient_url": patient_url,
        }
        return TemplateResponse(request, "admin/patients/consent/withdraw.html", context)
