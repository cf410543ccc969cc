"""Email for the mail the clinic sends in bulk (the reminders: thousands an hour before a busy
day), written out in one pass.

Django's EmailMultiAlternatives builds its message with the standard library's email package
(policy compat32), which encodes every header through email.header.Header and folds every one
again when the message is flattened: about 1 ms of CPU for a reminder, against about 40 µs here.
TextAndHtmlEmail writes the same MIME structure (RFC 2045 to 2049) directly: non-ASCII header
text as RFC 2047 base64 encoded-words, addresses as Django's sanitize_address writes them, and
each part as Django encodes it: 7bit if ASCII, 8bit if not, quoted-printable only if a line is
longer than RFC 5322 allows. Anything else (attachments, other alternatives, another charset)
goes to Django's builder, so the class can stand wherever an EmailMultiAlternatives does.
SMTPBackend is Django's SMTP backend with the envelope's addresses written the same way (Django's
parses each address afresh, about 0.15 ms), and an 8-bit message declared as such (RFC 6152's
BODY=8BITMIME) to a server that offers it, or written 7-bit for one that does not.
"""

import base64
import binascii
import functools
import re
import secrets
import smtplib
from email.utils import formatdate, make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends import smtp
from django.core.mail.message import BadHeaderError, sanitize_address
from django.core.mail.utils import DNS_NAME

# The longest run of UTF-8 bytes in one encoded-word: its base64 (56 characters) with
# "=?utf-8?b?" and "?=" makes 68 characters: within RFC 2047's 75, and a folded "Subject:" line
# within RFC 5322's 78.
WORD_BYTES = 42
# RFC 5322's recommended longest line, and the longest it allows.
MAX_LINE = 78
LINE_LIMIT = 998


def _refuse_line_breaks(value: str) -> None:
    """A line break in a header value would start a header of the sender's choosing."""
    if "\n" in value or "\r" in value:
        raise BadHeaderError(f"Header values can't contain newlines (got {value!r})")


def _is_utf8(message: EmailMultiAlternatives) -> bool:
    return (message.encoding or settings.DEFAULT_CHARSET).lower() in ("utf-8", "utf8")


def encode_header_text(value: str) -> str:
    """A header's text as it goes on the wire: itself if ASCII, else base64 encoded-words of
    whole characters, one to a folded line."""
    _refuse_line_breaks(value)
    if value.isascii():
        return value
    words, chunk = [], b""
    for character in value:
        encoded = character.encode()
        if len(chunk) + len(encoded) > WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return "\n ".join(f"=?utf-8?b?{base64.b64encode(word).decode('ascii')}?=" for word in words)


# A bare ASCII address (dot-atom local part, LDH domain labels): what sanitize_address would
# return unchanged, after parsing it with the email package's header parser (0.13 ms).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9-]{1,63}"
_BARE_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")


def _address(address: str) -> str:
    """One address for a header or the envelope, as Django's sanitize_address writes it."""
    if _BARE_ADDRESS.fullmatch(address):
        return address
    _refuse_line_breaks(address)
    return sanitize_address(address, "utf-8")


# The sender is the same on every message: written once.
_sender = functools.lru_cache(maxsize=8)(_address)


def _part(content_type: str, text: str, seven_bit: bool = False) -> bytes:
    """One text part, encoded as Django's SafeMIMEText encodes it: as it is (7bit or 8bit)
    unless a line is too long for SMTP, then quoted-printable, which shortens lines. With
    `seven_bit`, non-ASCII text goes quoted-printable too."""
    body = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    if max(map(len, body.split(b"\n"))) > LINE_LIMIT or (seven_bit and not body.isascii()):
        encoding, body = "quoted-printable", binascii.b2a_qp(body, istext=True)
    else:
        encoding = "7bit" if body.isascii() else "8bit"
    return (
        f'Content-Type: {content_type}; charset="utf-8"\nContent-Transfer-Encoding: {encoding}\n\n'
    ).encode("ascii") + body


class WrittenMessage:
    """What `message()` returns: the message as bytes, with the few methods Django's mail
    backends and tests call on a message."""

    def __init__(self, headers: list[tuple[str, str]], data: bytes):
        self._headers = headers
        self._data = data  # lines end in "\n"

    def __getitem__(self, name: str) -> str | None:
        return next((value for key, value in self._headers if key.lower() == name.lower()), None)

    def get_charset(self):
        return None

    def as_bytes(self, unixfrom: bool = False, linesep: str = "\n") -> bytes:
        return self._data if linesep == "\n" else self._data.replace(b"\n", linesep.encode())

    def as_string(self, unixfrom: bool = False, linesep: str = "\n") -> str:
        return self.as_bytes(linesep=linesep).decode("utf-8")


class TextAndHtmlEmail(EmailMultiAlternatives):
    """An EmailMultiAlternatives with one text/html alternative, written out cheaply."""

    def message(self, *, seven_bit: bool = False):
        """The message as bytes; with `seven_bit`, every part quoted-printable (for a server
        that does not take 8-bit mail)."""
        names = {name.lower() for name in self.extra_headers}
        if (
            self.attachments
            or len(self.alternatives) != 1
            or self.alternatives[0][1] != "text/html"
            or self.content_subtype != "plain"
            or not _is_utf8(self)
            or names & {"to", "cc", "reply-to"}
        ):
            return super().message()
        headers = [("From", _sender(self.extra_headers.get("From", self.from_email)))]
        for name, addresses in (("To", self.to), ("Cc", self.cc), ("Reply-To", self.reply_to)):
            if addresses:
                headers.append((name, ",\n ".join(map(_address, addresses))))
        headers.append(("Subject", encode_header_text(str(self.subject))))
        if "date" not in names:
            headers.append(("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)))
        if "message-id" not in names:
            headers.append(("Message-ID", make_msgid(domain=DNS_NAME)))
        headers += [
            (name, encode_header_text(str(value)))
            for name, value in self.extra_headers.items()
            if name.lower() != "from"
        ]
        head = "".join(f"{name}: {value}\n" for name, value in headers)
        if any(len(line) > MAX_LINE for line in head.splitlines()):
            # A long ASCII header (or address list entry) would need folding: Django folds.
            return super().message()
        parts = [
            _part("text/plain", str(self.body), seven_bit),
            _part("text/html", str(self.alternatives[0][0]), seven_bit),
        ]
        # A random boundary, and one that neither part contains (RFC 2046, 5.1.1).
        boundary = f"=_{secrets.token_hex(16)}"
        while any(boundary.encode("ascii") in part for part in parts):
            boundary = f"=_{secrets.token_hex(16)}"
        head += f'MIME-Version: 1.0\nContent-Type: multipart/alternative;\n boundary="{boundary}"\n'
        separator = f"\n--{boundary}\n".encode("ascii")
        data = b"".join(
            [
                head.encode("ascii"),
                separator,
                parts[0],
                separator,
                parts[1],
                f"\n--{boundary}--\n".encode("ascii"),
            ]
        )
        return WrittenMessage(headers, data)


EIGHT_BIT = ("BODY=8BITMIME",)


class SMTPBackend(smtp.EmailBackend):
    """Django's SMTP backend, with the envelope's addresses written as the headers' are above:
    Django's own parses the sender and each recipient afresh for every message."""

    def _send(self, email_message):
        if not email_message.recipients() or not _is_utf8(email_message):
            return super()._send(email_message)
        sender = _sender(email_message.from_email)
        recipients = [_address(address) for address in email_message.recipients()]
        data = email_message.message().as_bytes(linesep="\r\n")
        options = ()
        try:
            if not data.isascii():
                # 8-bit mail is declared to a server that offers 8BITMIME (RFC 6152) and
                # written 7-bit for one that does not (Django's own backend sends it anyway).
                self.connection.ehlo_or_helo_if_needed()  # what it offers is known after it
                if self.connection.has_extn("8bitmime"):
                    options = EIGHT_BIT
                elif isinstance(email_message, TextAndHtmlEmail):
                    data = email_message.message(seven_bit=True).as_bytes(linesep="\r\n")
            self.connection.sendmail(sender, recipients, data, mail_options=options)
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True
