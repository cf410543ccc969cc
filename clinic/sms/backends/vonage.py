"""Vonage's (formerly Nexmo's) SMS API: one form-encoded POST per message, a JSON answer with a
status per part. https://developer.vonage.com/en/messaging/sms/overview"""

from __future__ import annotations

from typing import TYPE_CHECKING

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _

from clinic.sms import SmsError
from clinic.sms.backends.base import BaseSmsBackend

if TYPE_CHECKING:
    from clinic.sms import SmsMessage

# The GSM 03.38 basic character set (ESC, the gateway to the extension table, left out). A body
# wholly in it goes as plain text, 160 characters a part; anything else, the extension table's
# characters (€ [ ] { } ~ ^ | \) included, goes as Unicode, 70 a part. Counting the extension
# table as Unicode costs a little on rare bodies but never lets a gateway swap a character.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
CLIENT_REF_MAX_LENGTH = 100


def is_gsm7(text: str) -> bool:
    return set(text) <= GSM7_BASIC


class VonageBackend(BaseSmsBackend):
    def __init__(self) -> None:
        self.api_key = settings.SMS_VONAGE_API_KEY
        self.api_secret = settings.SMS_VONAGE_API_SECRET
        if not self.api_key or not self.api_secret:
            raise ImproperlyConfigured(
                "The Vonage SMS backend needs SMS_VONAGE_API_KEY and SMS_VONAGE_API_SECRET."
            )
        self.url = settings.SMS_VONAGE_URL
        self.sender = settings.SMS_FROM
        self.timeout = settings.SMS_TIMEOUT_SECONDS
        # One session per backend: a run of reminders reuses the provider's TLS connection.
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def send(self, message: SmsMessage) -> str:
        if len(message.reference) > CLIENT_REF_MAX_LENGTH:
            # Cutting it would make two references one, and the reference is what tells sends apart.
            raise SmsError(
                _("The message reference is over the SMS provider's limit of %(limit)s characters.")
                % {"limit": CLIENT_REF_MAX_LENGTH}
            )
        form = {
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "from": self.sender,
            "to": message.to.removeprefix("+"),
            "text": message.body,
            "client-ref": message.reference,
        }
        if not is_gsm7(message.body):
            form["type"] = "unicode"
        try:
            response = self.session.post(
                self.url, data=form, timeout=self.timeout, headers={"Accept": "application/json"}
            )
        except requests.Timeout as error:
            raise SmsError(
                _("The SMS provider did not answer within %(seconds)s seconds.")
                % {"seconds": f"{self.timeout:g}"}
            ) from error
        except requests.RequestException as error:
            raise SmsError(_("The SMS provider could not be reached.")) from error
        if response.status_code != 200:
            raise SmsError(
                _("The SMS provider answered with HTTP status %(status)s.")
                % {"status": response.status_code}
            )
        return self._message_id(response)

    def _message_id(self, response: requests.Response) -> str:
        """The first part's id when every part was accepted. A long body goes as several parts,
        each with its own status; one refused part means the patient gets an incomplete text, so
        the whole message counts as refused."""
        try:
            parts = response.json()["messages"]
            statuses = [(str(part["status"]), part) for part in parts]
            if not statuses:
                raise ValueError("no messages")
        except (ValueError, KeyError, TypeError) as error:
            raise SmsError(_("The SMS provider's answer could not be read.")) from error
        for status, part in statuses:
            if status != "0":
                raise SmsError(
                    _("The SMS provider refused the message: %(reason)s (status %(status)s).")
                    % {"reason": part.get("error-text") or _("no reason given"), "status": status}
                )
        message_id = statuses[0][1].get("message-id")
        if not message_id:
            raise SmsError(_("The SMS provider's answer could not be read."))
        return str(message_id)
