"""Prints each message instead of sending it: the development default."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, TextIO

from django.conf import settings

from clinic.sms.backends.base import BaseSmsBackend

if TYPE_CHECKING:
    from clinic.sms import SmsMessage


def format_message(message: SmsMessage) -> str:
    return (
        f"To: {message.to}\n"
        f"From: {settings.SMS_FROM}\n"
        f"Reference: {message.reference}\n"
        "\n"
        f"{message.body}\n"
    )


class ConsoleBackend(BaseSmsBackend):
    def __init__(self, *, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        # A worker's threads share stdout; one message's lines must not interleave another's.
        self._lock = threading.Lock()

    def send(self, message: SmsMessage) -> str:
        with self._lock:
            self.stream.write(format_message(message))
            self.stream.write("-" * 79 + "\n")
            self.stream.flush()
        return f"console-{message.reference}"
