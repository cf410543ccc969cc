from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clinic.sms import SmsMessage


class BaseSmsBackend:
    """A way of sending one text message. Subclasses read their configuration from settings in
    `__init__` (keyword arguments override it) and raise `ImproperlyConfigured` there when it is
    incomplete, so a misconfigured host fails on the first send attempt with the reason."""

    def send(self, message: SmsMessage) -> str:
        """Hands the message over; returns the provider's id for it, or raises `SmsError` with
        a reason staff can read."""
        raise NotImplementedError

    def close(self) -> None:
        """Releases what the backend holds open (an HTTP session). Safe to call twice."""
