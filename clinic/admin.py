from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.utils.functional import cached_property
from simple_history.admin import SimpleHistoryAdmin

from .audit import access_record
from .models import AccessEvent, AccessLog


class EstimatedCountPaginator(Paginator):
    """Exact counts for a filtered or searched list; for a whole large table on PostgreSQL, the
    planner's estimate (pg_class.reltuples), which costs nothing, instead of a COUNT(*) that
    reads millions of rows to number the pages. Small tables are counted exactly."""

    EXACT_BELOW = 100_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if (
            connection.vendor == "postgresql"
            and isinstance(queryset, QuerySet)
            and not queryset.query.where
        ):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [queryset.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] >= self.EXACT_BELOW:
                return row[0]
        return super().count


class LargeTableAdmin:
    """For changelists over tables that grow without end (patients, sessions, reminders, the
    logs): no exact count of the whole table on every page."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False


class ReadOnlyAdmin:
    """Rows written only by their services or by the system: shown, never added, changed or
    deleted from the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class HistoryAdmin(SimpleHistoryAdmin):
    """Change history to read, with who, when, why and the diff; never to revert from.

    django-simple-history saves a posted historical version with only a view permission and
    outside the services (a recalled lot would become available, a withdrawn consent in force).
    Corrections go through the record's own page or service instead."""

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


class PatientRecordAdmin(LargeTableAdmin, HistoryAdmin):
    """A historied admin whose pages show a patient's record: opening one (its form or its
    history) goes into the access log under that patient."""

    def patient_id_of(self, obj) -> int:
        raise NotImplementedError

    def _log_view(self, request, obj) -> None:
        access_record(request, event=AccessEvent.RECORD_VIEWED, patient_id=self.patient_id_of(obj))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            self._log_view(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def history_view(self, request, object_id, extra_context=None):
        response = super().history_view(request, object_id, extra_context)
        if response.status_code == 200:
            obj = self.get_object(request, unquote(object_id))
            if obj is not None:
                self._log_view(request, obj)
        return response


@admin.register(AccessLog)
class AccessLogAdmin(ReadOnlyAdmin, LargeTableAdmin, admin.ModelAdmin):
    """Read-only: who saw or took what. Entries cannot be added, changed or deleted here (or
    anywhere: see AccessLog)."""

    list_display = ["at", "username", "event", "patient_id", "what", "address"]
    list_filter = ["event", ("at", admin.DateFieldListFilter)]
    search_fields = ["username", "=patient_id", "what", "=address"]
    date_hierarchy = "at"
    readonly_fields = ["at", "user_id", "username", "event", "patient_id", "what", "address"]
    fields = readonly_fields
