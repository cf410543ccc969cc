"""The access log: one call per event (`access_record`), the login signals, and the middleware
that logs every file download (a report's or a record's export) even from views that forget.
Nothing clinical is written here: who, when, which event, which patient (by id), the path."""

from django.contrib.auth import signals as auth_signals
from django.http import HttpRequest, HttpResponse

from .models import AccessEvent, AccessLog
from .net import client_ip

LOGGED = "_clinic_access_logged"


def access_record(
    request: HttpRequest | None,
    *,
    event: str,
    patient_id: int | None = None,
    what: str = "",
    user=None,
    username: str = "",
) -> AccessLog:
    user = user if user is not None else getattr(request, "user", None)
    if user is not None and not user.is_authenticated:
        user = None
    if request is not None:
        setattr(request, LOGGED, True)
    return AccessLog.objects.create(
        user_id=user.pk if user else None,
        username=(user.get_username() if user else username)[:150],
        event=event,
        patient_id=patient_id,
        what=(what or (request.get_full_path() if request is not None else ""))[:300],
        address=(client_ip(request) or None) if request is not None else None,
    )


def _logged_in(sender, request, user, **kwargs):
    access_record(request, event=AccessEvent.LOGIN, user=user)


def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        access_record(request, event=AccessEvent.LOGOUT, user=user)


def _login_failed(sender, credentials, request=None, **kwargs):
    # The username tried, never the password (Django has already masked it).
    access_record(
        request,
        event=AccessEvent.LOGIN_FAILED,
        username=str(credentials.get("username", "")),
        what=request.path if request is not None else "",
    )


def connect_signals() -> None:
    auth_signals.user_logged_in.connect(_logged_in, dispatch_uid="clinic.audit.login")
    auth_signals.user_logged_out.connect(_logged_out, dispatch_uid="clinic.audit.logout")
    auth_signals.user_login_failed.connect(_login_failed, dispatch_uid="clinic.audit.failed")


class ExportLogMiddleware:
    """Logs every download (a response sent as an attachment) that its view did not log
    itself: a report's CSV, a recall list, a chart saved as a file."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 200
            and response.get("Content-Disposition", "").startswith("attachment")
            and not getattr(request, LOGGED, False)
        ):
            access_record(request, event=AccessEvent.REPORT_EXPORTED)
        return response
