"""The SMS backends. Vonage's adapter talks to a real HTTP server on the loopback that answers as
Vonage's SMS API does; no test reaches the network (a guard below refuses any other address)."""

import io
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from clinic import sms
from clinic.sms import SmsError, SmsMessage, get_backend, send_sms
from clinic.sms.backends.console import ConsoleBackend
from clinic.sms.backends.filebased import FileBackend
from clinic.sms.backends.locmem import LocmemBackend
from clinic.sms.backends.vonage import VonageBackend, is_gsm7

REMINDER = SmsMessage(
    to="+34600111222",
    body="Le esperamos mañana a las 10:00. ¿Alguna duda? Llame al 900 000 000.",
    reference="reminder-42",
)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in (
            "127.0.0.1",
            "::1",
        ):
            raise AssertionError(f"a test tried to reach {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(autouse=True)
def _empty_outbox():
    sms.outbox.clear()
    yield
    sms.outbox.clear()


# --- Console, file, in-memory ---------------------------------------------------------------


@override_settings(SMS_FROM="Clinica Sol")
def test_console_prints_recipient_sender_reference_and_body():
    stream = io.StringIO()

    message_id = ConsoleBackend(stream=stream).send(REMINDER)

    printed = stream.getvalue()
    assert message_id == "console-reminder-42"
    assert "To: +34600111222" in printed
    assert "From: Clinica Sol" in printed
    assert "Reference: reminder-42" in printed
    assert REMINDER.body in printed


def test_console_writes_to_stdout_by_default(capsys):
    ConsoleBackend().send(REMINDER)

    assert REMINDER.body in capsys.readouterr().out


def test_file_backend_creates_its_folder_and_writes_one_file_per_message(tmp_path):
    folder = tmp_path / "sms" / "outgoing"
    second = SmsMessage(to="+34600333444", body="Otra cita", reference="reminder/43")

    with override_settings(SMS_FILE_PATH=str(folder)):
        backend = FileBackend()
        first_id = backend.send(REMINDER)
        second_id = backend.send(second)

    files = sorted(folder.iterdir())
    assert len(files) == 2
    assert first_id != second_id
    assert first_id == f"file-{files[0].stem}"
    assert files[0].name.endswith("-reminder-42.txt")
    assert files[1].name.endswith("-reminder_43.txt")
    assert files[0].name[:8].isdigit()
    assert REMINDER.body in files[0].read_text(encoding="utf-8")
    assert "To: +34600333444" in files[1].read_text(encoding="utf-8")


def test_file_backend_does_not_overwrite_a_message_with_the_same_name(tmp_path, monkeypatch):
    from clinic.sms.backends import filebased

    frozen = filebased.timezone.now()
    monkeypatch.setattr(filebased.timezone, "now", lambda: frozen)
    backend = FileBackend(file_path=tmp_path)

    ids = {backend.send(REMINDER), backend.send(REMINDER)}

    assert len(ids) == 2
    assert len(list(tmp_path.iterdir())) == 2


def test_locmem_keeps_messages_in_order_in_the_outbox():
    backend = LocmemBackend()

    first = backend.send(REMINDER)
    second = backend.send(SmsMessage(to="+34600333444", body="Otra", reference="reminder-43"))

    assert (first, second) == ("locmem-1", "locmem-2")
    assert [message.reference for message in sms.outbox] == ["reminder-42", "reminder-43"]
    assert sms.outbox[0] == REMINDER


def test_messages_cannot_be_changed_once_built():
    with pytest.raises(AttributeError):
        REMINDER.body = "changed"


# --- Choosing the backend -------------------------------------------------------------------


@override_settings(SMS_BACKEND="clinic.sms.backends.locmem.LocmemBackend")
def test_send_sms_uses_the_backend_in_settings():
    assert isinstance(get_backend(), LocmemBackend)

    assert send_sms(REMINDER) == "locmem-1"
    assert sms.outbox == [REMINDER]


@override_settings(SMS_BACKEND="clinic.sms.backends.locmem.LocmemBackend")
def test_get_backend_takes_a_path_and_passes_keyword_arguments():
    stream = io.StringIO()

    backend = get_backend("clinic.sms.backends.console.ConsoleBackend", stream=stream)
    backend.send(REMINDER)

    assert isinstance(backend, ConsoleBackend)
    assert "reminder-42" in stream.getvalue()
    assert sms.outbox == []


def test_get_backend_refuses_an_unknown_path():
    with pytest.raises(ImportError):
        get_backend("clinic.sms.backends.nowhere.Backend")


# --- Vonage ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "plain"),
    [
        ("¿Mañana a las 10:00? ¡Le esperamos! Niño, pingüino, café, Él.", True),
        ("Sesión de mesoterapia", False),  # ó is not in GSM-7's basic set
        ("Depósito: 20 €", False),  # € is in the extension table only
        ("Ваша запись завтра", False),
        ("Hasta mañana 🙂", False),
    ],
)
def test_gsm7_check(body, plain):
    assert is_gsm7(body) is plain


class VonageStub:
    """Answers POSTs as Vonage's SMS API does; each test sets `answer` and reads `forms`."""

    def __init__(self):
        self.forms: list[dict[str, list[str]]] = []
        self.client_ports: list[int] = []
        self.answer = self.accepted("0A0000001234ABCD")
        self.release = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Vonage's servers offer

            def do_POST(self):
                length = int(self.headers["Content-Length"])
                stub.forms.append(parse_qs(self.rfile.read(length).decode(), strict_parsing=True))
                stub.client_ports.append(self.client_address[1])
                status, body = stub.answer()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except ConnectionError:
                    pass  # the client gave up waiting: the timeout test

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sms/json"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @staticmethod
    def json_answer(document, status=200):
        return lambda: (status, json.dumps(document).encode())

    @classmethod
    def accepted(cls, *message_ids):
        return cls.json_answer(
            {
                "message-count": str(len(message_ids)),
                "messages": [
                    {
                        "to": "34600111222",
                        "message-id": message_id,
                        "status": "0",
                        "remaining-balance": "3.14",
                        "message-price": "0.0333",
                        "network": "21401",
                        "client-ref": "reminder-42",
                    }
                    for message_id in message_ids
                ],
            }
        )

    @classmethod
    def refused(cls, status, error_text):
        return cls.json_answer(
            {"message-count": "1", "messages": [{"status": status, "error-text": error_text}]}
        )

    def slow(self, seconds):
        def answer():
            self.release.wait(seconds)
            return self.accepted("late")()

        return answer

    def form(self, index=0) -> dict[str, str]:
        return {field: values[0] for field, values in self.forms[index].items()}


@pytest.fixture
def vonage():
    stub = VonageStub()
    stub.thread.start()
    with override_settings(
        SMS_VONAGE_URL=stub.url,
        SMS_VONAGE_API_KEY="key-abc",
        SMS_VONAGE_API_SECRET="secret-xyz",
        SMS_FROM="ClinicaSol",
        SMS_TIMEOUT_SECONDS=5.0,
    ):
        yield stub
    stub.release.set()
    stub.server.shutdown()
    stub.server.server_close()


def send_through_vonage(message=REMINDER) -> str:
    backend = VonageBackend()
    try:
        return backend.send(message)
    finally:
        backend.close()


def test_vonage_posts_the_message_and_returns_vonages_id(vonage):
    message_id = send_through_vonage()

    assert message_id == "0A0000001234ABCD"
    assert vonage.form() == {
        "api_key": "key-abc",
        "api_secret": "secret-xyz",
        "from": "ClinicaSol",
        "to": "34600111222",
        "text": REMINDER.body,
        "client-ref": "reminder-42",
    }


@pytest.mark.parametrize(
    "body", ["Llámenos", "Depósito: 20 €", "Ваша запись завтра", "Hasta mañana 🙂"]
)
def test_vonage_sends_bodies_outside_gsm7_as_unicode(vonage, body):
    send_through_vonage(SmsMessage(to="+34600111222", body=body, reference="reminder-7"))

    assert vonage.form()["type"] == "unicode"
    assert vonage.form()["text"] == body


def test_vonage_returns_the_first_parts_id_for_a_long_message(vonage):
    vonage.answer = vonage.accepted("PART-1", "PART-2")

    assert send_through_vonage() == "PART-1"


@pytest.mark.parametrize(
    ("status", "error_text"),
    [("2", "Missing to param"), ("29", "Non-Whitelisted Destination")],
)
def test_vonage_refusal_raises_with_vonages_reason_and_status(vonage, status, error_text):
    vonage.answer = vonage.refused(status, error_text)

    with pytest.raises(SmsError) as raised:
        send_through_vonage()

    assert str(raised.value) == (
        f"The SMS provider refused the message: {error_text} (status {status})."
    )
    assert REMINDER.body not in str(raised.value)


def test_vonage_refusal_of_a_later_part_refuses_the_message(vonage):
    vonage.answer = vonage.json_answer(
        {
            "message-count": "2",
            "messages": [
                {"message-id": "PART-1", "status": "0"},
                {"status": "1", "error-text": "Throttled"},
            ],
        }
    )

    with pytest.raises(SmsError, match=r"Throttled \(status 1\)"):
        send_through_vonage()


def test_vonage_http_error_raises(vonage):
    vonage.answer = lambda: (500, b"Internal Server Error")

    with pytest.raises(SmsError) as raised:
        send_through_vonage()

    assert str(raised.value) == "The SMS provider answered with HTTP status 500."


@pytest.mark.parametrize(
    "body",
    [b"<html>not json</html>", b'{"message-count": "0", "messages": []}', b'{"messages": "x"}'],
)
def test_vonage_unreadable_answer_raises(vonage, body):
    vonage.answer = lambda: (200, body)

    with pytest.raises(SmsError) as raised:
        send_through_vonage()

    assert str(raised.value) == "The SMS provider's answer could not be read."


def test_vonage_slow_answer_raises_after_the_timeout(vonage):
    vonage.answer = vonage.slow(5)

    with override_settings(SMS_TIMEOUT_SECONDS=0.2):
        started = time.monotonic()
        with pytest.raises(SmsError) as raised:
            send_through_vonage()

    assert time.monotonic() - started < 2
    assert str(raised.value) == "The SMS provider did not answer within 0.2 seconds."


def test_vonage_unreachable_provider_raises(vonage):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]

    with (
        override_settings(SMS_VONAGE_URL=f"http://127.0.0.1:{closed_port}/sms/json"),
        pytest.raises(SmsError) as raised,
    ):
        send_through_vonage()

    assert str(raised.value) == "The SMS provider could not be reached."


def test_vonage_refuses_a_reference_longer_than_vonage_accepts(vonage):
    message = SmsMessage(to="+34600111222", body="Hola", reference="r" * 101)

    with pytest.raises(SmsError, match="limit of 100 characters"):
        send_through_vonage(message)

    assert vonage.forms == []


def test_vonage_backend_sends_several_messages_over_one_connection(vonage):
    backend = VonageBackend()
    try:
        ids = [backend.send(REMINDER) for _ in range(3)]
    finally:
        backend.close()

    assert ids == ["0A0000001234ABCD"] * 3
    assert len(vonage.client_ports) == 3
    assert len(set(vonage.client_ports)) == 1


@pytest.mark.parametrize("missing", ["SMS_VONAGE_API_KEY", "SMS_VONAGE_API_SECRET"])
def test_vonage_without_credentials_is_improperly_configured(missing):
    configured = {"SMS_VONAGE_API_KEY": "key-abc", "SMS_VONAGE_API_SECRET": "secret-xyz"}

    with (
        override_settings(**{**configured, missing: ""}),
        pytest.raises(ImproperlyConfigured, match=missing),
    ):
        VonageBackend()


@override_settings(SMS_BACKEND="clinic.sms.backends.vonage.VonageBackend")
def test_send_sms_through_vonage(vonage):
    assert send_sms(REMINDER) == "0A0000001234ABCD"
    assert vonage.form()["client-ref"] == "reminder-42"
