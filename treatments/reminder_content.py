"""What a reminder says. Generic on purpose: the clinic, the date and time, where, whom to call,
and the links; nothing about the treatment (health data is special-category data, and an email
or a text message can be read by others)."""

import functools
from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from clinic import jinja
from patients.models import ReminderChannel

from . import reminder_policy as policy
from .models import Reminder


@dataclass(frozen=True)
class ReminderContent:
    """What one channel sends: an email's subject, text and HTML, or an SMS's text."""

    subject: str = ""
    text: str = ""
    html: str = ""
    sms: str = ""


def render_line(template: str, context: dict) -> str:
    """A template rendered as one line (a subject, a text message): its line breaks and runs
    of spaces folded."""
    return " ".join(render_to_string(template, context).split())


@functools.cache
def email_labels(language: str) -> dict[str, str]:
    """The fixed sentences of the reminder email in `language`, translated once a process: the
    email's templates (jinja2/treatments/reminders/) hold no text of their own, and Jinja2
    draws them several times faster than Django's engine drew them with `{% trans %}` (rendering
    a reminder: 563 to about 480 µs, docs/benchmarks.md)."""
    with translation.override(language):
        return {
            "hello": _("Hello,"),
            "where": _("Where"),
            "questions": _("Questions"),
            "confirm_prompt": _("Please confirm that you are coming:"),
            "cancel_prompt": _(
                "If you cannot come, please cancel so that we can offer the time to someone else:"
            ),
            "confirm": _("Confirm my appointment"),
            "cancel": _("Cancel my appointment"),
            "cancel_plea": _(
                "If you cannot come, please cancel so that we can offer the time to someone else."
            ),
        }


def appointment_links(*, session_id: int, session_start) -> dict[str, str]:
    base = settings.CLINIC_BASE_URL.rstrip("/")
    return {
        f"{action}_url": base
        + reverse(
            f"appointment_{action}",
            args=[
                policy.link_token(session_id=session_id, session_start=session_start, action=action)
            ],
        )
        for action in ("confirm", "cancel")
    }


def render_reminder(reminder: Reminder, channel: str | None = None) -> ReminderContent:
    """The content for `channel` (the reminder's own by default); only that channel's
    templates are rendered. The sentences that carry the date are translated here, once: a
    `blocktranslate` with its date filters cost more than the rest of the templates."""
    patient = reminder.session.course.patient
    channel = channel or reminder.channel
    facts = {
        "clinic_name": settings.CLINIC_NAME,
        "clinic_address": settings.CLINIC_ADDRESS,
        "clinic_phone": settings.CLINIC_PHONE,
        **appointment_links(session_id=reminder.session_id, session_start=reminder.session_start),
    }
    with translation.override(patient.preferred_language):
        start = timezone.localtime(reminder.session_start, policy.clinic_zone())
        time = date_format(start, "H:i")
        if channel == ReminderChannel.SMS:
            return ReminderContent(
                sms=_(
                    "%(clinic_name)s: your appointment is on %(date)s at %(time)s. Confirm: "
                    "%(confirm_url)s Cancel: %(cancel_url)s Questions: %(clinic_phone)s"
                )
                % {**facts, "date": date_format(start, "j/n"), "time": time}
            )
        intro = _(
            "This is a reminder of your appointment at %(clinic_name)s on %(date)s at %(time)s."
        ) % {**facts, "date": date_format(start, "l j F Y"), "time": time}
        language = translation.get_language()
        context = {**facts, "intro": intro, "language": language, "t": email_labels(language)}
        return ReminderContent(
            subject=_("Your appointment at %(clinic_name)s: %(date)s at %(time)s")
            % {**facts, "date": date_format(start, "l j F"), "time": time},
            text=jinja.render("treatments/reminders/email.txt", context),
            html=jinja.render("treatments/reminders/email.html", context),
        )
