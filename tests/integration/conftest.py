"""The reminder pipeline with its real parts: the test database on PostgreSQL, Redis as the
broker, `celery worker` (and `celery beat`) processes started from .venv, and an SMTP server
(aiosmtpd) on loopback that records every message it accepts.

The test process plays beat unless a test starts real beats: it runs the dispatcher and the
sweeper in a loop (`Pipeline.run_until`). Its Celery app publishes to the test's broker instead
of running tasks eagerly. Every process a fixture starts is stopped by that fixture, killed as a
process group so prefork children go too."""

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.utils import timezone
from kombu import pools as kombu_pools
from kombu.exceptions import OperationalError as BrokerError

from bench.measure import database_url, environment_without, free_port
from clinic.accounts import user_set_roles
from clinic.celery import app as celery_app
from clinic.roles import PRACTITIONER
from patients.models import ConsentKind, ReminderChannel
from tests.factories import (
    ConsentFactory,
    PatientFactory,
    ProtocolFactory,
    RoomFactory,
    ScreeningFactory,
    UserFactory,
)
from treatments import services
from treatments.models import Reminder, ReminderStatus

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(ROOT / ".venv" / "bin" / "celery")
# Redis database of the tests' broker: its own, flushed before each test, so the cache and
# whatever else uses REDIS_URL are left alone.
BROKER_DB = 15
# Short enough that a dead worker's claim or a lost broker message is put right in seconds.
CLAIM_TIMEOUT_SECONDS = 2
REQUEUE_SECONDS = 3
RETRY_SECONDS = 0.3
MAX_ATTEMPTS = 3
# Quiet hours that never apply (start == end), so the tests pass at any time of day.
NO_QUIET_HOURS = "00:00-00:00"
READY_TIMEOUT = 30
# How often the test process plays beat.
TICK_SECONDS = 0.25

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, every=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}", pytrace=False)
        time.sleep(every)


# The SMTP server


class _Recorder:
    """aiosmtpd handler: keeps the Message-ID of each accepted message, and counts SMTP
    connections (one EHLO each), shared by the server instances that come and go on one port."""

    def __init__(self):
        self.lock = threading.Lock()
        self.message_ids: list[str] = []
        self.connections = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        headers = BytesHeaderParser().parsebytes(envelope.original_content or envelope.content)
        with self.lock:
            self.message_ids.append(str(headers["Message-ID"]).strip())
        return "250 Message accepted for delivery"


class Mailbox:
    """A real SMTP server on 127.0.0.1. `stop()` refuses connections on its port (and drops
    the open ones); `start()` listens on the same port again."""

    def __init__(self):
        self.port = free_port()
        self.recorder = _Recorder()
        self._controller: Controller | None = None

    def start(self) -> None:
        assert self._controller is None
        self._controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        with self.recorder.lock:
            return self.recorder.connections

    def message_ids(self) -> list[str]:
        with self.recorder.lock:
            return list(self.recorder.message_ids)

    def count(self) -> int:
        with self.recorder.lock:
            return len(self.recorder.message_ids)

    def counts(self) -> Counter:
        return Counter(self.message_ids())


@pytest.fixture
def mailbox():
    box = Mailbox()
    box.start()
    yield box
    box.stop()


# The broker


def broker_url_for(base: str, db: int) -> str:
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


def _point_celery_at(url: str, *, eager: bool) -> None:
    """The test process's Celery app publishes to `url`; its pooled connections to the
    previous broker are closed first, or they would keep publishing there."""
    # kombu keeps its pools in a registry of its own: a pool merely closed would be handed
    # out again, closed, to the next publisher.
    kombu_pools.reset()
    celery_app._pool = None
    if "amqp" in celery_app.__dict__:
        celery_app.amqp._producer_pool = None
    celery_app.conf.broker_url = url
    celery_app.conf.broker_write_url = None
    celery_app.conf.broker_read_url = None
    celery_app.conf.task_always_eager = eager


@contextlib.contextmanager
def publishing_to(url: str):
    was_eager, was_url = celery_app.conf.task_always_eager, celery_app.conf.broker_url
    _point_celery_at(url, eager=False)
    try:
        yield
    finally:
        _point_celery_at(was_url, eager=was_eager)


@pytest.fixture
def broker_url():
    url = broker_url_for(django_settings.REDIS_URL, BROKER_DB)
    client = redis.Redis.from_url(url)
    client.flushdb()
    with publishing_to(url):
        yield url
    client.flushdb()
    client.close()


class RedisServer:
    """A redis-server of the test's own, without persistence, that can be killed and started
    again on the same port: the machine's Redis is shared and must not be restarted."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.tmp = tmp
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def answers():
            try:
                return client.ping()
            except redis.RedisError:
                return False

        wait_until(answers, timeout=10, what=f"redis-server on port {self.port}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path):
    if not _which("redis-server"):
        message = "redis-server is not installed"
        if os.environ.get("REQUIRE_SERVICES", "") not in ("", "0"):
            pytest.fail(f"{message} (REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(message)
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


def _which(program: str) -> bool:
    return any(
        os.access(Path(folder) / program, os.X_OK)
        for folder in os.environ.get("PATH", "").split(os.pathsep)
        if folder
    )


# Workers and beats


class Processes:
    """Celery workers and beats, each in its own process group. Output goes to files under the
    test's tmp folder and is shown when a process is missing at the end."""

    def __init__(self, env: dict[str, str], tmp: Path):
        self.env = env
        self.tmp = tmp
        self.running: dict[str, subprocess.Popen] = {}
        self.commands: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.started = 0

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        self.started += 1
        log = open(self.tmp / f"{name}-{self.started}.log", "wb")  # noqa: SIM115 - the child owns it
        process = subprocess.Popen(
            [CELERY, "-A", "clinic", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.running[name] = process
        self.commands[name] = (args, env)
        return process

    def revive(self, name: str) -> bool:
        """Starts `name` again if it has exited, as the process manager does in production (a
        Celery worker can die of a broker that vanished under it). Says whether it had to."""
        if self.running[name].poll() is None:
            return False
        self._spawn(name, *self.commands[name])
        return True

    def worker(self, name: str = "w1", *, concurrency: int = 2, wait: bool = True, **env):
        self._spawn(
            name,
            [
                "worker",
                "-l",
                "WARNING",
                "-c",
                str(concurrency),
                "-n",
                f"{name}@%h",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            {**self.env, **env},
        )
        if wait:
            self.wait_ready(name)

    def beat(self, name: str, **env) -> None:
        self._spawn(
            name,
            ["beat", "-l", "WARNING", "--schedule", str(self.tmp / f"{name}-schedule")],
            {**self.env, **env},
        )

    def wait_ready(self, *names: str) -> None:
        """Until every named worker answers a ping through the broker."""
        wanted = set(names)

        def all_answer():
            for name, process in self.running.items():
                if name in wanted and process.poll() is not None:
                    pytest.fail(f"{name} exited with {process.returncode}:\n{self.output(name)}")
            try:
                replies = celery_app.control.ping(timeout=0.5)
            except BrokerError:
                return False
            answered = {next(iter(reply)).split("@")[0] for reply in replies}
            return wanted <= answered

        wait_until(all_answer, timeout=READY_TIMEOUT, what=f"workers {sorted(wanted)} to answer")

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def kill_all(self) -> None:
        for name in list(self.running):
            self.kill(name)

    def output(self, name: str) -> str:
        logs = sorted(self.tmp.glob(f"{name}-*.log"))
        return logs[-1].read_text(errors="replace")[-4000:] if logs else ""


def worker_env(*, broker: str, smtp: str) -> dict[str, str]:
    return environment_without("PYTEST", "DJANGO_", "REMINDER_", "CELERY_") | {
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker,
        "EMAIL_URL": smtp,
        "REMINDER_QUIET_HOURS": NO_QUIET_HOURS,
        "REMINDER_CLAIM_TIMEOUT_SECONDS": str(CLAIM_TIMEOUT_SECONDS),
        "REMINDER_REQUEUE_SECONDS": str(REQUEUE_SECONDS),
        "REMINDER_RETRY_SECONDS": str(RETRY_SECONDS),
        "REMINDER_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "CLINIC_MAIL_DOMAIN": django_settings.CLINIC_MAIL_DOMAIN,
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def reminder_settings(settings):
    """The same reminder rules in the test process (which plans and dispatches) as in the
    workers."""
    settings.REMINDER_QUIET_HOURS = NO_QUIET_HOURS
    settings.REMINDER_SCHEDULE = ["email:48"]
    settings.REMINDER_CLAIM_TIMEOUT_SECONDS = CLAIM_TIMEOUT_SECONDS
    settings.REMINDER_REQUEUE_SECONDS = REQUEUE_SECONDS
    settings.REMINDER_RETRY_SECONDS = RETRY_SECONDS
    settings.REMINDER_MAX_ATTEMPTS = MAX_ATTEMPTS
    return settings


@pytest.fixture
def processes(transactional_db, broker_url, mailbox, reminder_settings, tmp_path):
    """Starts nothing by itself; whatever a test starts through it is killed at the end,
    before the database is emptied."""
    started = Processes(worker_env(broker=broker_url, smtp=mailbox.url), tmp_path)
    yield started
    started.kill_all()


# Driving the pipeline


class Pipeline:
    """What beat does, from the test process: the dispatcher and the sweeper, again and again.
    A dispatcher that cannot reach the broker fails like beat's task would, and runs again on
    the next round."""

    def __init__(self):
        self.broker_errors = 0

    def tick(self) -> None:
        try:
            while services.reminders_dispatch().full_batch:
                pass
        except (BrokerError, redis.RedisError, OSError):
            self.broker_errors += 1
        services.reminders_sweep()

    def run_until(
        self, condition: Callable[[], bool], *, timeout: float, what: str, poll: float = 0.02
    ) -> None:
        """Ticks every TICK_SECONDS and checks `condition` every `poll` seconds in between, so
        a test can act the moment something happens (kill a worker mid-batch)."""
        deadline = time.monotonic() + timeout
        next_tick = 0.0
        while not condition():
            now = time.monotonic()
            if now > deadline:
                pytest.fail(
                    f"timed out after {timeout:.0f} s waiting for {what}; reminders by status: "
                    f"{status_counts()}",
                    pytrace=False,
                )
            if now >= next_tick:
                self.tick()
                next_tick = now + TICK_SECONDS
            time.sleep(poll)

    def run_for(self, seconds: float) -> None:
        """Keeps dispatching and sweeping, so anything that would go out twice has the time
        to."""
        end = time.monotonic() + seconds
        self.run_until(lambda: time.monotonic() >= end, timeout=seconds + 30, what="the end")


@pytest.fixture
def pipeline():
    return Pipeline()


def status_counts(ids=None) -> dict[str, int]:
    rows = Reminder.objects.all() if ids is None else Reminder.objects.filter(pk__in=ids)
    return dict(Counter(rows.values_list("status", flat=True)))


def all_settled(ids) -> Callable[[], bool]:
    """No reminder among `ids` is still pending or on its way."""

    def settled() -> bool:
        return not Reminder.objects.live().filter(pk__in=ids).exists()

    return settled


def message_id(reminder_id: int) -> str:
    return f"<reminder-{reminder_id}@{django_settings.CLINIC_MAIL_DOMAIN}>"


# The clinic's side


def at_hour(days_ahead: int, hour: int, minute: int = 0) -> datetime:
    day = timezone.localdate() + timedelta(days=days_ahead)
    return timezone.make_aware(datetime.combine(day, datetime.min.time())) + timedelta(
        hours=hour, minutes=minute
    )


class Clinic:
    """A practitioner, a room and the desk, and patients booked through the services."""

    def __init__(self):
        self.practitioner = user_set_roles(
            user=UserFactory(username="dra.escoda"), roles=[PRACTITIONER]
        )
        self.desk = UserFactory(username="desk")
        self.room = RoomFactory(name="Cabina 1")

    def course(self):
        patient = PatientFactory(preferred_channel=ReminderChannel.EMAIL)
        ConsentFactory(patient=patient, kind=ConsentKind.MESOTHERAPY)
        ScreeningFactory(patient=patient, taken_on=timezone.localdate())
        return services.course_plan(
            patient=patient,
            protocol=ProtocolFactory(),
            lead_practitioner=self.practitioner,
            start_date=timezone.localdate(),
            actor=self.desk,
        )

    def book(self, start: datetime, *, course=None, number: int = 1):
        return services.session_book(
            course=course or self.course(),
            number=number,
            start=start,
            end=start + timedelta(minutes=45),
            practitioner=self.practitioner,
            room=self.room,
            actor=self.desk,
        )

    def due_reminders(self, count: int, *, sessions: int = 5) -> list[int]:
        """`count` email reminders due now, spread over a few sessions next week; written in
        bulk, as many bookings over the past days would have left them."""
        booked = [self.book(at_hour(7, 9 + number)) for number in range(sessions)]
        Reminder.objects.filter(session__in=booked).delete()
        now = timezone.now()
        rows = [
            Reminder(
                session=booked[index % sessions],
                channel=ReminderChannel.EMAIL,
                before=timedelta(hours=48),
                session_start=booked[index % sessions].scheduled_start,
                due_at=now - timedelta(minutes=1),
                status=ReminderStatus.PENDING,
            )
            for index in range(count)
        ]
        return [reminder.pk for reminder in Reminder.objects.bulk_create(rows)]


@pytest.fixture
def clinic(transactional_db, reminder_settings):
    return Clinic()
