"""Keeps messages in `clinic.sms.outbox`, for tests."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from clinic import sms
from clinic.sms.backends.base import BaseSmsBackend

if TYPE_CHECKING:
    from clinic.sms import SmsMessage

# The id is the message's place in the outbox; two threads appending at once must not get the same.
_lock = threading.Lock()


class LocmemBackend(BaseSmsBackend):
    def send(self, message: SmsMessage) -> str:
        with _lock:
            sms.outbox.append(message)
            return f"locmem-{len(sms.outbox)}"
