"""Text messages to patients, through a pluggable backend chosen by `settings.SMS_BACKEND`, the way
Django chooses an email backend. Callers build an `SmsMessage` and call `send_sms`; they never
speak to a provider directly, so development and tests run with the console, file or in-memory
backends and production with the provider's adapter. See docs/sms.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from clinic.sms.backends.base import BaseSmsBackend

__all__ = ["SmsError", "SmsMessage", "get_backend", "outbox", "send_sms"]


@dataclass(frozen=True)
class SmsMessage:
    to: str
    """The patient's number in E.164, e.g. "+34600111222"."""
    body: str
    reference: str
    """The sender's idempotency key ("reminder-42"), handed to the provider so its records and
    ours can be matched."""


class SmsError(Exception):
    """The message was not accepted. `str(error)` is written for staff and never contains the
    message body, which may say what treatment a patient is having."""


# Messages the locmem backend "sent", oldest first, like django.core.mail.outbox. Tests empty it
# with `outbox.clear()` (not by rebinding it, which would leave the backend a stale list).
outbox: list[SmsMessage] = []


def get_backend(path: str | None = None, **kwargs) -> BaseSmsBackend:
    return import_string(path or settings.SMS_BACKEND)(**kwargs)


def send_sms(message: SmsMessage) -> str:
    """Sends through the configured backend; returns the provider's id for the message."""
    backend = get_backend()
    try:
        return backend.send(message)
    finally:
        backend.close()
