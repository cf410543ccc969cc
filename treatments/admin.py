from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from clinic.admin import HistoryAdmin, LargeTableAdmin, PatientRecordAdmin
from clinic.forms import add_service_errors

from . import selectors, services
from .forms import PlannedSessionFormSet
from .models import (
    Course,
    Protocol,
    Reminder,
    ReminderStatus,
    Room,
    Session,
    SessionProduct,
    SessionStatus,
)


@admin.register(Protocol)
class ProtocolAdmin(HistoryAdmin):
    list_display = [
        "name",
        "indication",
        "sessions",
        "interval_min_days",
        "interval_max_days",
        "maintenance_interval_days",
        "active",
    ]
    list_filter = ["indication", "active"]
    search_fields = ["name"]


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["name", "active"]
    search_fields = ["name"]


class SessionInline(admin.TabularInline):
    model = Session
    fields = ["number", "scheduled_start", "practitioner", "room", "status", "signed_at", "link"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("practitioner", "room", "course")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="")
    def link(self, session):
        return format_html(
            '<a href="{}">{}</a>', reverse("treatments:session", args=[session.pk]), _("record")
        )


COURSE_EDITABLE = {
    "lead_practitioner",
    "interval_min_days",
    "interval_max_days",
    "status_reason",
    "notes",
}


@admin.register(Course)
class CourseAdmin(PatientRecordAdmin):
    list_display = [
        "patient",
        "indication",
        "protocol",
        "lead_practitioner",
        "start_date",
        "status",
    ]
    list_filter = ["status", "indication", "lead_practitioner"]
    list_select_related = ["patient", "protocol", "lead_practitioner"]
    search_fields = ["patient__family_name", "patient__given_name", "protocol__name"]
    autocomplete_fields = ["patient"]
    inlines = [SessionInline]
    date_hierarchy = "start_date"
    change_form_template = "admin/treatments/course/change_form.html"

    def patient_id_of(self, course):
        return course.patient_id

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["patient", "protocol", "lead_practitioner", "start_date", "notes"]
        return [
            "patient",
            "protocol",
            "lead_practitioner",
            "indication",
            "planned_sessions",
            "interval_min_days",
            "interval_max_days",
            "start_date",
            "status",
            "status_reason",
            "notes",
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["patient", "protocol", "indication", "planned_sessions", "start_date", "status"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "lead_practitioner":
            from .forms import practitioners

            kwargs["queryset"] = practitioners()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            # Only what the form edits: the status belongs to the services.
            changed = [name for name in form.changed_data if name in COURSE_EDITABLE]
            if changed:
                obj._history_user = request.user
                obj.save(update_fields=changed)
            return
        course = services.course_plan(
            patient=obj.patient,
            protocol=obj.protocol,
            lead_practitioner=obj.lead_practitioner,
            start_date=obj.start_date,
            notes=obj.notes,
            actor=request.user,
        )
        obj.pk = course.pk
        obj._state.adding = False

    def response_add(self, request, obj, post_url_continue=None):
        return redirect("admin:treatments_course_plan", obj.pk)

    def get_urls(self):
        return [
            path(
                "<int:pk>/plan/",
                self.admin_site.admin_view(self.plan_view),
                name="treatments_course_plan",
            ),
            *super().get_urls(),
        ]

    def plan_view(self, request, pk):
        """Proposes a date for each session not booked yet; staff adjust and book them all."""
        if not request.user.has_perm("treatments.add_session"):
            raise PermissionDenied
        course = get_object_or_404(Course.objects.select_related("patient", "protocol"), pk=pk)
        booked = set(course.sessions.occupying().values_list("number", flat=True))
        proposals = selectors.proposed_sessions(course=course, skip=booked)
        formset = PlannedSessionFormSet(request.POST or None, initial=proposals)
        warnings = []
        if request.method == "POST" and formset.is_valid():
            days = [form.cleaned_data["day"] for form in formset]
            warnings = services.window_warnings(course, days)
            try:
                with transaction.atomic():
                    for form in formset:
                        start, end = form.times()
                        try:
                            services.session_book(
                                course=course,
                                number=form.cleaned_data["number"],
                                start=start,
                                end=end,
                                practitioner=form.cleaned_data["practitioner"],
                                room=form.cleaned_data["room"],
                                actor=request.user,
                            )
                        except ValidationError as error:
                            add_service_errors(form, error)
                    if any(form.errors for form in formset):
                        raise ValidationError("not booked")
            except ValidationError:
                pass
            else:
                self.message_user(
                    request,
                    _("%(count)d session(s) booked.") % {"count": len(formset.forms)},
                    messages.SUCCESS,
                )
                for warning in warnings:
                    self.message_user(request, warning, messages.WARNING)
                return redirect("admin:treatments_course_change", course.pk)
        elif request.method == "GET":
            warnings = services.window_warnings(course, [p["day"] for p in proposals])
        return TemplateResponse(
            request,
            "admin/treatments/course/plan.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Book the sessions"),
                "course": course,
                "formset": formset,
                "warnings": warnings,
                "opts": self.opts,
            },
        )


class SessionProductInline(admin.TabularInline):
    model = SessionProduct
    fields = ["product", "lot", "quantity", "volume_ml", "area", "voided_at", "void_reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product", "lot")

    def has_add_permission(self, request, obj=None):
        return False


class ReminderInline(admin.TabularInline):
    model = Reminder
    fields = ["channel", "due_at", "status", "reason", "attempts", "sent_at", "last_error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("reminders")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _status_action(status, label):
    def action(modeladmin, request, queryset):
        done = 0
        for session in queryset:
            try:
                services.session_set_status(
                    session=session, status=status, actor=request.user, reason=str(label)
                )
                done += 1
            except ValidationError as error:
                modeladmin.message_user(
                    request, f"{session}: {' '.join(error.messages)}", messages.ERROR
                )
        if done:
            modeladmin.message_user(
                request, _("%(count)d session(s) changed.") % {"count": done}, messages.SUCCESS
            )

    action.__name__ = f"mark_{status}"
    action.short_description = label
    action.allowed_permissions = ("change",)
    return action


@admin.register(Session)
class SessionAdmin(PatientRecordAdmin):
    list_display = [
        "scheduled_start",
        "patient",
        "number_in_course",
        "practitioner",
        "room",
        "status",
    ]
    list_filter = ["status", ("scheduled_start", admin.DateFieldListFilter), "practitioner", "room"]
    list_select_related = ["course__patient", "practitioner", "room"]
    search_fields = ["course__patient__family_name", "course__patient__given_name"]
    date_hierarchy = "scheduled_start"
    inlines = [SessionProductInline, ReminderInline]
    change_form_template = "admin/treatments/session/change_form.html"
    fields = [
        "course",
        "number",
        "scheduled_start",
        "scheduled_end",
        "practitioner",
        "room",
        "status",
        "status_reason",
        "signed_by",
        "signed_at",
    ]
    readonly_fields = ["course", "number", "status", "status_reason", "signed_by", "signed_at"]
    actions = [
        _status_action(SessionStatus.CONFIRMED, _("Mark as confirmed")),
        _status_action(SessionStatus.CHECKED_IN, _("Check in")),
        _status_action(SessionStatus.NO_SHOW, _("Mark as no-show")),
    ]

    def patient_id_of(self, session):
        return session.course.patient_id

    @admin.display(description=_("patient"), ordering="course__patient__family_name")
    def patient(self, session):
        return session.course.patient

    @admin.display(description=_("session"))
    def number_in_course(self, session):
        return f"{session.number} / {session.course.planned_sessions}"

    def has_add_permission(self, request):
        # Sessions are booked from their course.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status not in (SessionStatus.SCHEDULED, SessionStatus.CONFIRMED):
            return self.fields
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not form.has_changed() or "scheduled_start" not in form.cleaned_data:
            return  # nothing to move (a session no longer movable shows read-only)
        moved = services.session_move(
            session=obj,
            start=form.cleaned_data["scheduled_start"],
            end=form.cleaned_data["scheduled_end"],
            practitioner=form.cleaned_data["practitioner"],
            room=form.cleaned_data["room"],
            actor=request.user,
        )
        days = [
            timezone.localdate(start)
            for start in moved.course.sessions.occupying()
            .order_by("scheduled_start")
            .values_list("scheduled_start", flat=True)
        ]
        for warning in services.window_warnings(moved.course, days):
            self.message_user(request, warning, messages.WARNING)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "practitioner":
            from .forms import practitioners

            kwargs["queryset"] = practitioners()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class MoveForm(form):
            def clean(self):
                cleaned = super().clean()
                movable = {"scheduled_start", "scheduled_end", "practitioner", "room"}
                if self.instance.pk and not self.errors and movable <= set(cleaned):
                    try:
                        services.check_free(
                            session=self.instance,
                            start=cleaned["scheduled_start"],
                            end=cleaned["scheduled_end"],
                            practitioner=cleaned["practitioner"],
                            room=cleaned["room"],
                        )
                    except ValidationError as error:
                        add_service_errors(self, error)
                return cleaned

        return MoveForm

    def get_urls(self):
        return [
            path(
                "<int:pk>/cancel/",
                self.admin_site.admin_view(self.cancel_view),
                name="treatments_session_cancel",
            ),
            *super().get_urls(),
        ]

    def cancel_view(self, request, pk):
        if not request.user.has_perm("treatments.change_session"):
            raise PermissionDenied
        session = get_object_or_404(Session.objects.select_related("course__patient"), pk=pk)
        from .forms import AmendForm

        form = AmendForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.session_cancel(
                    session=session,
                    by_patient=request.POST.get("by") == "patient",
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                self.message_user(request, _("The session is cancelled."), messages.SUCCESS)
                return redirect("admin:treatments_session_change", session.pk)
        return TemplateResponse(
            request,
            "admin/treatments/session/cancel.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Cancel the session"),
                "session": session,
                "form": form,
                "opts": self.opts,
                "now": timezone.now(),
            },
        )


@admin.register(Reminder)
class ReminderAdmin(LargeTableAdmin, admin.ModelAdmin):
    """Every reminder, read-only: the pipeline writes them. A failed one can be sent again."""

    list_display = [
        "due_at",
        "channel",
        "status",
        "patient",
        "session_start",
        "attempts",
        "sent_at",
        "problem",
    ]
    list_filter = ["status", "channel", ("due_at", admin.DateFieldListFilter)]
    list_select_related = ["session__course__patient"]
    search_fields = [
        "session__course__patient__family_name",
        "session__course__patient__given_name",
    ]
    date_hierarchy = "due_at"
    fields = [
        "session_link",
        "channel",
        "before",
        "session_start",
        "due_at",
        "status",
        "reason",
        "attempts",
        "enqueued_at",
        "claimed_at",
        "sent_at",
        "recipient",
        "provider_id",
        "last_error",
        "created_at",
    ]
    readonly_fields = fields
    actions = ["resend"]

    @admin.display(description=_("patient"), ordering="session__course__patient__family_name")
    def patient(self, reminder):
        return reminder.session.course.patient

    @admin.display(description=_("session"))
    def session_link(self, reminder):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:treatments_session_change", args=[reminder.session_id]),
            reminder.session,
        )

    @admin.display(description=_("why"))
    def problem(self, reminder):
        return reminder.last_error if reminder.status == ReminderStatus.FAILED else reminder.reason

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description=_("Send the failed reminders again"), permissions=["change"])
    def resend(self, request, queryset):
        done = 0
        skipped = queryset.exclude(status=ReminderStatus.FAILED).count()
        for reminder in queryset.filter(status=ReminderStatus.FAILED):
            try:
                services.reminder_resend(reminder=reminder, actor=request.user)
                done += 1
            except ValidationError as error:
                self.message_user(
                    request, f"{reminder}: {' '.join(error.messages)}", messages.ERROR
                )
        if done:
            self.message_user(
                request, _("%(count)d reminder(s) sent again.") % {"count": done}, messages.SUCCESS
            )
        if skipped:
            self.message_user(
                request,
                _("%(count)d reminder(s) had not failed and were left alone.") % {"count": skipped},
                messages.WARNING,
            )
