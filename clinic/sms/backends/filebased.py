"""Writes one file per message into `settings.SMS_FILE_PATH`, to read what would have been sent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.sms import SmsError
from clinic.sms.backends.base import BaseSmsBackend
from clinic.sms.backends.console import format_message

if TYPE_CHECKING:
    from clinic.sms import SmsMessage


def _safe_for_a_file_name(reference: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", reference)[:100] or "message"


class FileBackend(BaseSmsBackend):
    def __init__(self, *, file_path: str | Path | None = None) -> None:
        self.file_path = Path(file_path or settings.SMS_FILE_PATH)
        try:
            self.file_path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ImproperlyConfigured(
                f"SMS_FILE_PATH {self.file_path} is not a folder that can be created: {error}"
            ) from error

    def send(self, message: SmsMessage) -> str:
        stem = f"{timezone.now():%Y%m%d-%H%M%S-%f}-{_safe_for_a_file_name(message.reference)}"
        # Exclusive creation: a second message in the same microsecond with the same reference
        # gets a numbered name instead of overwriting the first.
        for attempt in range(100):
            name = stem if attempt == 0 else f"{stem}-{attempt}"
            try:
                with (self.file_path / f"{name}.txt").open("x", encoding="utf-8") as file:
                    file.write(format_message(message))
            except FileExistsError:
                continue
            except OSError as error:
                raise SmsError(
                    _("The message could not be written to the SMS folder: %(error)s")
                    % {"error": error.strerror or error}
                ) from error
            return f"file-{name}"
        raise SmsError(
            _("The message could not be written to the SMS folder: %(error)s")
            % {"error": _("too many messages with the same reference at once")}
        )
