"""The patient's side of a reminder: the signed links to confirm or cancel a session. A link
acts once; used again, expired, made for an earlier time or tampered with, it changes nothing
and the page says why."""

from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from clinic.accounts import system_user
from clinic.roles import RECEPTION

from ..models import Session, SessionStatus
from ..reminder_content import render_line
from ..reminder_policy import LINK_SALT, LinkError, read_link_token
from .sessions import session_cancel, session_set_status

CANCELLED = (SessionStatus.CANCELLED_BY_PATIENT, SessionStatus.CANCELLED_BY_CLINIC)


def appointment_language(token: str) -> str | None:
    """The patient's language, so that even a refusal speaks it; None for a link that is not
    genuine."""
    try:
        session_id = int(signing.loads(token, salt=LINK_SALT)["s"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    return (
        Session.objects.filter(pk=session_id)
        .values_list("course__patient__preferred_language", flat=True)
        .first()
    )


def appointment_from_link(
    *, token: str, action: str, now: datetime | None = None, lock: bool = False
) -> Session:
    """The session a link is for, or LinkError with what to tell the patient. With `lock`, the
    session's row stays locked for the caller's transaction, so what is checked here still
    holds when the caller changes it."""
    now = now or timezone.now()
    session_id, start = read_link_token(token, action=action, now=now)
    sessions = Session.objects.select_related("course__patient")
    if lock:
        sessions = sessions.select_for_update(of=("self",))
    session = sessions.filter(pk=session_id).first()
    if session is None:
        raise LinkError(_("This appointment no longer exists. Please call the clinic."))
    if session.status in CANCELLED:
        raise LinkError(_("This appointment has been cancelled."))
    if int(session.scheduled_start.timestamp()) != int(start.timestamp()):
        raise LinkError(
            _("This appointment has been moved. The reminder for the new time has links that work.")
        )
    if session.status not in (SessionStatus.SCHEDULED, SessionStatus.CONFIRMED):
        raise LinkError(_("This link has expired: the appointment time has passed."))
    return session


@transaction.atomic
def appointment_confirm(*, token: str, now: datetime | None = None) -> tuple[Session, bool]:
    """Confirms the session; False when it was already confirmed (the link used twice)."""
    session = appointment_from_link(token=token, action="confirm", now=now, lock=True)
    if session.status == SessionStatus.CONFIRMED:
        return session, False
    return (
        session_set_status(
            session=session,
            status=SessionStatus.CONFIRMED,
            actor=system_user(),
            reason=_("Confirmed by the patient from a reminder"),
        ),
        True,
    )


@transaction.atomic
def appointment_cancel(*, token: str, now: datetime | None = None) -> Session:
    """Cancels the session for the patient, cancels its reminders and tells reception."""
    from ..tasks import session_cancelled_notify

    session = appointment_from_link(token=token, action="cancel", now=now, lock=True)
    session = session_cancel(
        session=session,
        by_patient=True,
        reason=_("Cancelled by the patient from a reminder"),
        actor=system_user(),
    )
    session_cancelled_notify.delay_on_commit(session.pk)
    return session


def reception_notify_cancellation(*, session_id: int) -> int:
    """An email to everyone at reception, in the clinic's language: who cancelled, which
    session. Internal mail, so the patient's name is in it; nothing clinical is."""
    session = Session.objects.select_related("course__patient", "practitioner", "room").get(
        pk=session_id
    )
    recipients = list(
        get_user_model()
        .objects.filter(groups__name=RECEPTION, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )
    if not recipients:
        return 0
    with translation.override(settings.LANGUAGE_CODE):
        context = {"session": session, "patient": session.course.patient}
        subject = render_line("treatments/reminders/cancelled_subject.txt", context)
        body = render_to_string("treatments/reminders/cancelled.txt", context)
    return send_mail(subject, body, None, recipients)
