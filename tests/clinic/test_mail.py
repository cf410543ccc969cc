"""The text-and-HTML email written out in one pass: what a standard parser reads back from it
is what was given, in every part and header, and anything it does not handle goes through
Django's own builder."""

import os
import smtplib
import subprocess
import sys
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from django.core.mail import BadHeaderError, EmailMultiAlternatives
from django.core.mail.message import sanitize_address

from bench.measure import free_port
from clinic.mail import TextAndHtmlEmail, WrittenMessage, _address

SUBJECT = "Su cita en Clínica Núñez: sábado 5 de diciembre a las 10:00 — ¡le esperamos! 漢字 🙂"
TEXT = "Hola,\n\nLínea con = y un espacio al final \n.\nUna línea sola con un punto arriba.\n" + (
    "https://clinic.example/a/confirm/" + "x" * 120 + "\n"
)
HTML = '<p>Hola <b>Clínica</b></p>\n<a href="https://clinic.example/?a=1&amp;b=2">Confirmar</a>'


def email(cls=TextAndHtmlEmail, **kwargs) -> EmailMultiAlternatives:
    message = cls(
        subject=kwargs.pop("subject", SUBJECT),
        body=kwargs.pop("body", TEXT),
        from_email="Clínica Núñez <citas@clinic.example>",
        to=["Ana Núñez <ana@example.com>", "bob@example.com"],
        headers={"Message-ID": "<reminder-7@clinic.example>", **kwargs.pop("headers", {})},
        **kwargs,
    )
    message.attach_alternative(HTML, "text/html")
    return message


def parsed(message: EmailMultiAlternatives):
    return message_from_bytes(message.message().as_bytes(linesep="\r\n"), policy=policy.default)


def test_a_parser_reads_back_every_header_and_part_as_given():
    read = parsed(email())
    assert str(read["Subject"]) == SUBJECT
    assert str(read["From"]) == "Clínica Núñez <citas@clinic.example>"
    assert str(read["To"]) == "Ana Núñez <ana@example.com>, bob@example.com"
    assert read["Message-ID"] == "<reminder-7@clinic.example>"
    assert read["Date"] is not None
    assert read.get_content_type() == "multipart/alternative"
    text, html = (part for part in read.walk() if not part.is_multipart())
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_content().replace("\r\n", "\n") == TEXT
    assert html.get_content().replace("\r\n", "\n") == HTML


def test_it_reads_back_as_django_s_own_builder_does():
    ours, django = parsed(email()), parsed(email(EmailMultiAlternatives))
    for header in ("From", "To", "Message-ID", "MIME-Version"):
        assert str(ours[header]) == str(django[header])
    bodies = [
        [
            part.get_content().replace("\r\n", "\n")
            for part in read.walk()
            if not part.is_multipart()
        ]
        for read in (ours, django)
    ]
    assert bodies[0] == bodies[1]


def transfer_encodings(message: EmailMultiAlternatives) -> list[str]:
    return [
        part["Content-Transfer-Encoding"]
        for part in parsed(message).walk()
        if not part.is_multipart()
    ]


def test_parts_are_encoded_as_django_encodes_them():
    # Non-ASCII text as 8bit, ASCII as 7bit: what Django's builder chooses for the same parts.
    assert transfer_encodings(email()) == ["8bit", "8bit"]
    assert transfer_encodings(email()) == transfer_encodings(email(EmailMultiAlternatives))
    ascii_only = email(body="Hello,\n\nSee you on Tuesday.\n")
    assert transfer_encodings(ascii_only) == ["7bit", "8bit"]
    assert transfer_encodings(ascii_only) == transfer_encodings(
        email(EmailMultiAlternatives, body="Hello,\n\nSee you on Tuesday.\n")
    )


def test_a_line_too_long_for_smtp_goes_quoted_printable():
    long_text = "Línea " + "x" * 1200 + "\nfin\n"
    message = email(body=long_text)
    assert transfer_encodings(message) == ["quoted-printable", "8bit"]
    raw = message.message().as_bytes(linesep="\r\n")
    assert max(map(len, raw.split(b"\r\n"))) <= 998
    text = next(part for part in parsed(message).walk() if not part.is_multipart())
    assert text.get_content().replace("\r\n", "\n") == long_text


def test_the_wire_form_has_short_header_lines_and_crlf():
    raw = email().message().as_bytes(linesep="\r\n")
    head = raw.partition(b"\r\n\r\n")[0]
    lines = raw.split(b"\r\n")
    assert b"\n" not in b"".join(lines)
    assert head.isascii() and max(map(len, head.split(b"\r\n"))) <= 78
    assert max(map(len, lines)) <= 998
    words = [word for line in lines for word in line.split() if word.startswith(b"=?")]
    assert words and all(len(word) <= 75 for word in words)


def test_the_boundary_is_one_no_part_contains(monkeypatch):
    tokens = iter(["a" * 32, "b" * 32])
    monkeypatch.setattr("clinic.mail.secrets.token_hex", lambda nbytes: next(tokens))
    text = "A line that happens to hold --=_" + "a" * 32 + "\n"
    read = parsed(email(body=text))
    assert read.get_boundary() == "=_" + "b" * 32
    plain = next(part for part in read.walk() if not part.is_multipart())
    assert plain.get_content().replace("\r\n", "\n") == text


def test_an_ascii_subject_goes_as_it_is():
    raw = email(subject="Your appointment").message().as_string()
    assert "\nSubject: Your appointment\n" in raw


def test_a_header_with_a_line_break_is_refused():
    with pytest.raises(BadHeaderError):
        email(subject="Hello\nBcc: everyone@example.com").message()
    with pytest.raises(BadHeaderError):
        email(headers={"X-Tag": "a\r\nb"}).message()


def test_what_it_does_not_write_itself_goes_through_django():
    with_attachment = email()
    with_attachment.attach("note.txt", "hello", "text/plain")
    assert isinstance(with_attachment.message(), type(email(EmailMultiAlternatives).message()))
    read = message_from_bytes(with_attachment.message().as_bytes(), policy=policy.default)
    assert [part.get_filename() for part in read.iter_attachments()] == ["note.txt"]


def test_the_locmem_and_console_backends_take_it(mailoutbox, capsys, settings):
    email().send()
    assert mailoutbox[0].extra_headers["Message-ID"] == "<reminder-7@clinic.example>"
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    email().send()
    assert "Message-ID: <reminder-7@clinic.example>" in capsys.readouterr().out


BARE = [
    "ana.garcia+citas@example.com",
    "o'brien@mail.example.org",
    "ANA@Example.COM",
    "a!#$%&'*+/=?^_`{|}~-z@x-1.example",
]
DRESSED = [
    "Ana Núñez <ana@example.com>",
    "Clinic <clinic@localhost>",
    "josé@example.com",
    "ana@ejemplo.españa",
    '"Garcia, Ana" <ana@example.com>',
    "ana..garcia@example.com",
]


@pytest.mark.parametrize("address", BARE + DRESSED)
def test_addresses_are_written_as_django_writes_them(address, monkeypatch):
    expected = sanitize_address(address, "utf-8")
    calls = []
    monkeypatch.setattr(
        "clinic.mail.sanitize_address", lambda *args: calls.append(args) or sanitize_address(*args)
    )
    assert _address(address) == expected
    # Bare addresses skip the parser; any other goes through Django's own function.
    assert bool(calls) is (address in DRESSED)


def test_an_address_with_a_line_break_is_refused():
    with pytest.raises((BadHeaderError, ValueError)):
        _address("ana@example.com\nBcc: everyone@example.com")


class Recorder:
    def __init__(self, offer_8bitmime: bool = True, refuse_greeting: bool = False):
        self.envelopes = []
        self.offer_8bitmime, self.refuse_greeting = offer_8bitmime, refuse_greeting

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if self.refuse_greeting:
            return ["554 Not today"]
        session.host_name = hostname
        return [line for line in responses if self.offer_8bitmime or "8BITMIME" not in line]

    async def handle_HELO(self, server, session, envelope, hostname):
        if self.refuse_greeting:
            return "554 Not today"
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server(settings):
    """Starts a real SMTP server on loopback with the given handler, and points the clinic's
    SMTP backend at it."""
    servers = []

    def start(handler):
        port = free_port()
        server = Controller(handler, hostname="127.0.0.1", port=port)
        server.start()
        servers.append(server)
        settings.EMAIL_BACKEND = "clinic.mail.SMTPBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        return handler

    yield start
    for server in servers:
        server.stop()


def test_a_server_without_8bitmime_gets_the_message_in_seven_bits(smtp_server):
    recorder = smtp_server(Recorder(offer_8bitmime=False))
    assert email().send() == 1
    (envelope,) = recorder.envelopes
    assert envelope.original_content.isascii()
    assert not any(option.upper().startswith("BODY") for option in envelope.mail_options)
    read = message_from_bytes(envelope.original_content, policy=policy.default)
    assert str(read["Subject"]) == SUBJECT
    text, html = (part for part in read.walk() if not part.is_multipart())
    assert text["Content-Transfer-Encoding"] == html["Content-Transfer-Encoding"]
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    assert text.get_content().replace("\r\n", "\n") == TEXT
    assert html.get_content().replace("\r\n", "\n") == HTML


def test_a_refused_greeting_is_an_error_unless_failing_silently(smtp_server):
    recorder = smtp_server(Recorder(refuse_greeting=True))
    assert email().send(fail_silently=True) == 0
    with pytest.raises(smtplib.SMTPHeloError):
        email().send()
    assert recorder.envelopes == []


def test_the_smtp_backend_sends_the_message_to_a_real_server(settings):
    recorder = Recorder()
    port = free_port()
    server = Controller(recorder, hostname="127.0.0.1", port=port)
    server.start()
    try:
        settings.EMAIL_BACKEND = "clinic.mail.SMTPBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        assert email().send() == 1
        ascii_only = TextAndHtmlEmail("Hello", "Hello\n", "citas@clinic.example", ["b@example.com"])
        ascii_only.attach_alternative("<p>Hello</p>", "text/html")
        assert ascii_only.send() == 1
    finally:
        server.stop()
    (envelope, ascii_only) = recorder.envelopes
    assert envelope.mail_from == "citas@clinic.example"
    # 8-bit text is declared to a server that offers 8BITMIME; 7-bit text needs nothing.
    assert "BODY=8BITMIME" in envelope.mail_options
    assert not any(option.startswith("BODY") for option in ascii_only.mail_options)
    assert envelope.rcpt_tos == ["ana@example.com", "bob@example.com"]
    read = message_from_bytes(envelope.original_content, policy=policy.default)
    assert str(read["Subject"]) == SUBJECT and read["Message-ID"] == "<reminder-7@clinic.example>"
    text, html = (part for part in read.walk() if not part.is_multipart())
    assert text.get_content().replace("\r\n", "\n") == TEXT
    assert html.get_content().replace("\r\n", "\n") == HTML


def test_an_smtp_email_url_selects_the_clinic_s_backend():
    env = {**os.environ, "EMAIL_URL": "smtp://127.0.0.1:2525", "DJANGO_DEBUG": "1"}
    printed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; import django; "
            "django.setup(); print(settings.EMAIL_BACKEND)",
        ],
        env={**env, "DJANGO_SETTINGS_MODULE": "clinic.settings"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed.strip() == "clinic.mail.SMTPBackend"


def test_a_long_ascii_header_goes_through_django_which_folds_it():
    message = email(subject="Reminder " + "x" * 100).message()
    assert not isinstance(message, WrittenMessage)
    assert max(map(len, message.as_bytes(linesep="\r\n").split(b"\r\n"))) <= 998
