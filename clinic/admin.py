from django.core.exceptions import PermissionDenied
from simple_history.admin import SimpleHistoryAdmin


class HistoryAdmin(SimpleHistoryAdmin):
    """Change history to read, with who, when, why and the diff; never to revert from.

    django-simple-history saves a posted historical version with only a view permission and
    outside the services (a recalled lot would become available, a withdrawn consent in force).
    Corrections go through the record's own page or service instead."""

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)
