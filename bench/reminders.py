"""Benchmark of the reminder pipeline: 10,000 due reminders through Redis and two `celery worker`
processes to an SMTP server on loopback, beside the same broker and workers running no-op tasks.

    DJANGO_DEBUG=1 DATABASE_URL=postgres://clinic:clinic@127.0.0.1:5432/clinic_bench_reminders \\
        REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/reminders.py

The database is created if it does not exist, migrated, and then emptied (`flush`), so the script
refuses a database whose name does not contain "bench" (unless `--force`). The broker is the
Redis of REDIS_URL, database `--redis-db` (13 by default), flushed before and after the run.

What it measures, on the same broker and the same workers (docs/benchmarks.md, "Reminders"),
in `--rounds` rounds (3 by default), each round's reminders between two no-op runs:
- no-op: `--noop` tasks (`clinic.tasks.noop`) published at once, timed from the first publish
  until the queue and Redis's unacknowledged set are both empty;
- reminders: `--reminders` rows due now; one `reminders_dispatch` task is sent, as beat would
  send it, and the pipeline runs as in production (batches of REMINDER_DISPATCH_BATCH, each
  full batch starting the next). Timed from that task until the last row is marked sent, and
  until the last message reaches the SMTP server;
- the ratio of each round: its reminders per second to the faster of the no-op runs just
  before and after it; the figure held against the target is the median of the rounds';
- checks, each round: every reminder sent, one message per Message-ID, no other message.

The workers run with debug off (production settings), quiet hours off so the run does not depend
on the time of day, and otherwise the settings' defaults.
"""

import argparse
import contextlib
import logging
import os
import platform
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.measure import database_url, environment_without, free_port  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--reminders", type=int, default=10_000)
parser.add_argument("--noop", type=int, default=10_000, help="no-op tasks per measurement")
parser.add_argument("--rounds", type=int, default=3, help="reminder runs, each between no-op runs")
parser.add_argument("--sessions", type=int, default=200, help="sessions the reminders are for")
parser.add_argument("--workers", type=int, default=2, help="worker processes")
parser.add_argument(
    "--concurrency",
    type=int,
    default=os.cpu_count() or 1,
    help="prefork children per worker (default: the number of CPUs, as celery worker's own)",
)
parser.add_argument("--redis-db", type=int, default=13, help="Redis database of the broker")
parser.add_argument("--timeout", type=float, default=300, help="seconds before giving up")
parser.add_argument("--force", action="store_true", help="empty even a non-bench database")
args = parser.parse_args()

# The broker (and the cache) on a Redis database of the benchmark's own, for this process and
# the workers alike: the settings read REDIS_URL when Django starts.
if not os.environ.get("REDIS_URL"):
    sys.exit("Set REDIS_URL: the benchmark needs Redis as the broker.")
_redis = urlsplit(os.environ["REDIS_URL"])
BROKER_URL = urlunsplit((_redis.scheme, _redis.netloc, f"/{args.redis_db}", "", ""))
os.environ["REDIS_URL"] = BROKER_URL

import django  # noqa: E402
import psycopg  # noqa: E402
from django.db import connection  # noqa: E402


def ensure_database() -> None:
    """Creates the benchmark's database when it is missing (the role needs CREATEDB)."""
    db = connection.settings_dict
    params = {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
        if exists.fetchone() is None:
            admin.execute(f'CREATE DATABASE "{db["NAME"]}"')
            print(f"Created database {db['NAME']}.")


django.setup()

import redis  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from celery import __version__ as celery_version  # noqa: E402
from django.apps import apps  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db.migrations.executor import MigrationExecutor  # noqa: E402
from django.db.models import Max  # noqa: E402
from django.utils import timezone  # noqa: E402

from clinic.accounts import user_set_roles  # noqa: E402
from clinic.celery import app as celery_app  # noqa: E402
from clinic.roles import PRACTITIONER, ROLE_PERMISSIONS, sync_roles  # noqa: E402
from clinic.tasks import noop  # noqa: E402
from patients.models import ConsentKind, ReminderChannel  # noqa: E402
from tests.factories import (  # noqa: E402
    ConsentFactory,
    PatientFactory,
    ProtocolFactory,
    RoomFactory,
    ScreeningFactory,
    UserFactory,
)
from treatments import services  # noqa: E402
from treatments.models import Reminder, ReminderStatus  # noqa: E402
from treatments.tasks import reminders_dispatch  # noqa: E402

TARGET_SECONDS = 60
TARGET_RATIO = 0.3
SESSIONS_PER_DAY = 8
WARMUP_REMINDERS = 100
WARMUP_NOOPS = 500


# The SMTP server


# The Message-ID header of a message's header block. The server shares the machine's CPUs with
# the workers, so it reads only this header, not the whole head with the email package's parser
# (which cost it 0.28 ms a message, a fifth of its work).
MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)\r?$", re.IGNORECASE | re.MULTILINE)


class Recorder:
    """Keeps each accepted message's Message-ID (None if it has none) and when it arrived."""

    def __init__(self):
        self.lock = threading.Lock()
        self.message_ids: list[str] = []
        self.last_at = 0.0

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        found = MESSAGE_ID.search(content, 0, content.find(b"\r\n\r\n"))
        with self.lock:
            self.message_ids.append(found and found[1].decode("ascii", "replace"))
            self.last_at = time.time()
        return "250 Message accepted for delivery"

    def take(self) -> tuple[list[str], float]:
        with self.lock:
            taken, last = self.message_ids, self.last_at
            self.message_ids, self.last_at = [], 0.0
        return taken, last


# The data


def fill(sessions: int):
    """A practitioner, a room and `sessions` patients each booked once, from next week on, eight
    a day. The reminders the bookings planned are removed: the measured ones are written later."""
    call_command("flush", interactive=False, verbosity=0)
    sync_roles(apps, ROLE_PERMISSIONS)
    practitioner = user_set_roles(user=UserFactory(username="bench.dr"), roles=[PRACTITIONER])
    desk = UserFactory(username="bench.desk")
    room = RoomFactory(name="Bench room")
    protocol = ProtocolFactory()
    first_day = timezone.localdate() + timedelta(days=7)
    booked = []
    for number in range(sessions):
        patient = PatientFactory(preferred_channel=ReminderChannel.EMAIL)
        # Recorded by the desk: a factory's own user would cost a password hash each.
        ConsentFactory(patient=patient, kind=ConsentKind.MESOTHERAPY, recorded_by=desk)
        ScreeningFactory(patient=patient, taken_on=timezone.localdate(), recorded_by=desk)
        course = services.course_plan(
            patient=patient,
            protocol=protocol,
            lead_practitioner=practitioner,
            start_date=timezone.localdate(),
            actor=desk,
        )
        day = first_day + timedelta(days=number // SESSIONS_PER_DAY)
        start = timezone.make_aware(
            datetime.combine(day, datetime.min.time())
            + timedelta(hours=9 + number % SESSIONS_PER_DAY)
        )
        booked.append(
            services.session_book(
                course=course,
                number=1,
                start=start,
                end=start + timedelta(minutes=45),
                practitioner=practitioner,
                room=room,
                actor=desk,
            )
        )
    Reminder.objects.all().delete()
    return booked


def due_reminders(booked, count: int) -> list[int]:
    now = timezone.now()
    rows = [
        Reminder(
            session=booked[index % len(booked)],
            channel=ReminderChannel.EMAIL,
            before=timedelta(hours=48),
            session_start=booked[index % len(booked)].scheduled_start,
            due_at=now - timedelta(minutes=1),
            status=ReminderStatus.PENDING,
        )
        for index in range(count)
    ]
    return [row.pk for row in Reminder.objects.bulk_create(rows, batch_size=2000)]


# The workers


def start_workers(smtp_port: int, log_folder: Path) -> list[subprocess.Popen]:
    env = environment_without("DJANGO_", "REMINDER_", "CELERY_") | {
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": database_url(),
        "REDIS_URL": BROKER_URL,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "REMINDER_QUIET_HOURS": "00:00-00:00",
        "CLINIC_MAIL_DOMAIN": settings.CLINIC_MAIL_DOMAIN,
    }
    workers = []
    for number in range(1, args.workers + 1):
        with open(log_folder / f"bench-worker-{number}.log", "wb") as log:
            workers.append(
                subprocess.Popen(
                    [
                        str(ROOT / ".venv" / "bin" / "celery"),
                        "-A",
                        "clinic",
                        "worker",
                        "-l",
                        "WARNING",
                        "-c",
                        str(args.concurrency),
                        "-n",
                        f"bench{number}@%h",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    deadline = time.monotonic() + 60
    while True:
        for worker in workers:
            if worker.poll() is not None:
                sys.exit(f"A worker exited with {worker.returncode}; see {log_folder}.")
        replies = celery_app.control.ping(timeout=0.5)
        if len(replies) >= args.workers:
            return workers
        if time.monotonic() > deadline:
            sys.exit(f"The workers did not answer within 60 s; see {log_folder}.")


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


# The measurements


def broker_drained(client: redis.Redis) -> bool:
    """Nothing waits in the queue and nothing delivered is unacknowledged (tasks acknowledge
    once they have run: CELERY_TASK_ACKS_LATE). Seen twice, 10 ms apart, because a message
    taken off the queue reaches the unacknowledged set a moment later."""
    for _ in range(2):
        if client.llen("celery") or client.hlen("unacked"):
            return False
        time.sleep(0.01)
    return True


def run_noops(client: redis.Redis, count: int) -> float:
    """Seconds from the first publish until all `count` no-ops have run."""
    started = time.perf_counter()
    with celery_app.producer_or_acquire() as producer:
        for _ in range(count):
            noop.apply_async(producer=producer)
    deadline = time.monotonic() + args.timeout
    while not broker_drained(client):
        if time.monotonic() > deadline:
            sys.exit("The no-op tasks did not all run in time.")
        time.sleep(0.002)
    return time.perf_counter() - started


def run_reminders(ids: list[int], recorder: Recorder) -> dict:
    started_wall, started = time.time(), time.perf_counter()
    reminders_dispatch.delay()
    # The rows were written together, so their ids are one range: a cheap query to repeat.
    rows = Reminder.objects.filter(pk__gte=min(ids), pk__lte=max(ids))
    pending = rows.exclude(status=ReminderStatus.SENT)
    deadline = time.monotonic() + args.timeout
    while pending.exists():
        if time.monotonic() > deadline:
            stuck = Counter(pending.values_list("status", flat=True))
            sys.exit(f"Not all reminders were sent in time: {dict(stuck)}")
        time.sleep(0.1)
    seen = time.perf_counter() - started
    last_row = rows.aggregate(last=Max("sent_at"))["last"]
    # The last row is marked sent just after its message is accepted; wait for stragglers
    # (a second copy of a message would show up here).
    time.sleep(1)
    message_ids, last_message = recorder.take()
    return {
        "rows_s": last_row.timestamp() - started_wall,
        "smtp_s": last_message - started_wall,
        "seen_s": seen,
        "message_ids": message_ids,
    }


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit(f"This benchmark needs PostgreSQL (DATABASE_URL), not {connection.vendor}.")
    name = connection.settings_dict["NAME"]
    if "bench" not in name and not args.force:
        sys.exit(
            f"Refusing to empty {name!r}: its name does not contain 'bench'. Pass --force if "
            "that is really what you want."
        )
    ensure_database()
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        print("Migrating the database...", flush=True)
        call_command("migrate", verbosity=0)
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    celery_app.conf.task_always_eager = False

    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    print(
        f"Database {name} on PostgreSQL {postgres}; Redis {client.info()['redis_version']} "
        f"at {BROKER_URL}; {os.cpu_count()} CPUs; Python {platform.python_version()}, "
        f"Celery {celery_version}."
    )
    print(
        f"{args.workers} worker processes x {args.concurrency} prefork child(ren); "
        f"dispatch batch {settings.REMINDER_DISPATCH_BATCH}; prefetch multiplier "
        f"{settings.CELERY_WORKER_PREFETCH_MULTIPLIER}; acks late."
    )

    step = time.perf_counter()
    booked = fill(args.sessions)
    print(f"Fill: {len(booked)} booked sessions in {time.perf_counter() - step:.1f} s.")

    recorder = Recorder()
    smtp_port = free_port()
    smtp = Controller(recorder, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    log_folder = ROOT / "var"
    log_folder.mkdir(exist_ok=True)
    workers = start_workers(smtp_port, log_folder)
    try:
        # Warm-up: each worker loads its code and templates and opens its SMTP connection.
        run_noops(client, WARMUP_NOOPS)
        warmup = due_reminders(booked, WARMUP_REMINDERS)
        run_reminders(warmup, recorder)

        # No-op, then each round's reminders followed by no-op again: every reminder run has a
        # no-op run just before and just after it, so a drift in the machine's speed over the
        # minutes of the benchmark touches both sides of its ratio alike.
        noops = [run_noops(client, args.noop)]
        rounds = []
        for _ in range(args.rounds):
            ids = due_reminders(booked, args.reminders)
            rounds.append((ids, run_reminders(ids, recorder)))
            noops.append(run_noops(client, args.noop))
    finally:
        stop_workers(workers)
        smtp.stop()
        client.flushdb()

    print()
    print(
        f"{args.rounds} rounds of {args.reminders} due reminders (one dispatch task sent as beat "
        f"would), each between two runs of {args.noop} no-op tasks on the same broker and workers."
    )
    print(
        f"{'round':>5} {'last row sent':>15} {'last at SMTP':>13} {'reminders/s':>13} "
        f"{'no-op/s before, after':>23} {'ratio':>7}  checks"
    )
    ratios, times, all_passed = [], [], True
    for number, (ids, result) in enumerate(rounds, start=1):
        before, after = noops[number - 1], noops[number]
        send_time = max(result["rows_s"], result["smtp_s"])
        ratio = (args.reminders / send_time) / (args.noop / min(before, after))
        passed = checks_pass(ids, result["message_ids"])
        ratios.append(ratio)
        times.append(send_time)
        all_passed &= passed
        print(
            f"{number:5d} {result['rows_s']:13.2f} s {result['smtp_s']:11.2f} s "
            f"{args.reminders / send_time:13.0f} {args.noop / before:16.0f}, "
            f"{args.noop / after:5.0f} {ratio:7.2f}  {'passed' if passed else 'FAILED'}"
        )
    ratio = statistics.median(ratios)
    print(
        f"Ratio, reminders to the faster of the no-op runs around them: median {ratio:.2f} "
        f"(rounds: {', '.join(f'{value:.2f}' for value in ratios)})."
    )
    print()
    print(
        f"Targets: all sent within {TARGET_SECONDS} s: "
        f"{'met' if max(times) <= TARGET_SECONDS else 'NOT met'} (slowest round "
        f"{max(times):.1f} s); at least {TARGET_RATIO} of the no-op throughput: "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'} (median {ratio:.2f}, lowest "
        f"{min(ratios):.2f}); checks: {'passed' if all_passed else 'FAILED'}."
    )
    if not all_passed:
        sys.exit(1)


def checks_pass(ids: list[int], message_ids: list[str | None]) -> bool:
    """Every reminder of the round marked sent, and exactly one message for each at the SMTP
    server, under its own Message-ID; no message for anything else. Prints what fails."""
    counts = Counter(message_ids)
    expected = {f"<reminder-{pk}@{settings.CLINIC_MAIL_DOMAIN}>" for pk in ids}
    sent_rows = Reminder.objects.filter(pk__in=ids, status=ReminderStatus.SENT).count()
    duplicates = sum(counts.values()) - len(counts)
    strangers = len(set(counts) - expected)
    missing = len(expected - set(counts))
    passed = sent_rows == len(ids) and duplicates == missing == strangers == 0
    if not passed:
        print(
            f"  rows marked sent {sent_rows} of {len(ids)}; distinct Message-IDs at SMTP "
            f"{len(counts)}; duplicates {duplicates}; missing {missing}; unexpected {strangers}"
        )
    return passed


if __name__ == "__main__":
    main()
