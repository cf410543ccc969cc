"""The reminder pipeline end to end: rows in PostgreSQL, Redis as broker, real `celery worker`
and `celery beat` processes, and a real SMTP server that counts Message-IDs. A reminder's
Message-ID is its idempotency key, so "delivered exactly once" is "its Message-ID arrived once"."""

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from tests.concurrency import run_at_once
from treatments import services
from treatments.models import Reminder, ReminderStatus

from .conftest import (
    MAX_ATTEMPTS,
    REQUEUE_SECONDS,
    Processes,
    all_settled,
    message_id,
    publishing_to,
    status_counts,
    wait_until,
    worker_env,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def assert_each_delivered_once(mailbox, ids) -> None:
    counts = mailbox.counts()
    assert set(counts) == {message_id(pk) for pk in ids}
    assert [mid for mid, times in counts.items() if times > 1] == []
    assert status_counts(ids) == {ReminderStatus.SENT: len(ids)}


def test_500_due_reminders_are_each_delivered_exactly_once(clinic, processes, mailbox, pipeline):
    ids = clinic.due_reminders(500)
    processes.worker("w1", concurrency=2)

    pipeline.run_until(all_settled(ids), timeout=60, what="500 reminders to go out")
    pipeline.run_for(REQUEUE_SECONDS + 1)

    assert_each_delivered_once(mailbox, ids)
    sent = Reminder.objects.filter(pk__in=ids)
    assert not sent.exclude(provider_id__startswith="<reminder-").exists()
    assert not sent.filter(recipient="").exists()


def test_killing_the_worker_mid_batch_loses_nothing_and_repeats_only_the_same_message_id(
    clinic, processes, mailbox, pipeline
):
    """One prefork child (-c 1), so one SIGKILL can interrupt at most one send between the
    SMTP server's "250" and the row marked sent: at most one repeat per kill. A batch of 1,500,
    so that a worker sending freely while it is restarted cannot finish it before the last kill."""
    ids = clinic.due_reminders(1500)
    processes.worker("w", concurrency=1)
    delivered_at_kill = []

    for threshold in (80, 200, 320):
        pipeline.run_until(
            lambda threshold=threshold: mailbox.count() >= threshold,
            timeout=60,
            what=f"{threshold} messages before the next kill",
        )
        processes.kill("w")
        delivered_at_kill.append(mailbox.count())
        processes.worker("w", concurrency=1)

    pipeline.run_until(all_settled(ids), timeout=90, what="the batch to finish after the kills")
    pipeline.run_for(REQUEUE_SECONDS + 1)

    assert all(0 < delivered < len(ids) for delivered in delivered_at_kill), delivered_at_kill
    counts = mailbox.counts()
    assert set(counts) == {message_id(pk) for pk in ids}
    repeats = sum(counts.values()) - len(counts)
    assert repeats <= len(delivered_at_kill)
    assert status_counts(ids) == {ReminderStatus.SENT: len(ids)}


@pytest.fixture
def workers_on_own_redis(transactional_db, own_redis, mailbox, reminder_settings, tmp_path):
    started = Processes(worker_env(broker=own_redis.url, smtp=mailbox.url), tmp_path)
    with publishing_to(own_redis.url):
        yield started
        started.kill_all()


def test_restarting_redis_mid_batch_loses_no_reminder(
    clinic, own_redis, workers_on_own_redis, mailbox, pipeline
):
    ids = clinic.due_reminders(500)
    workers_on_own_redis.worker("w1", concurrency=2)

    pipeline.run_until(lambda: mailbox.count() >= 150, timeout=60, what="150 messages")
    own_redis.kill()
    # What the broker held is gone with it; only the rows remember.
    wait_until(
        lambda: not Reminder.objects.filter(pk__in=ids, status=ReminderStatus.SENDING).exists(),
        timeout=10,
        what="the sends in progress to finish",
    )
    lost = Reminder.objects.filter(pk__in=ids, status=ReminderStatus.PENDING).count()
    own_redis.start()
    # A worker that lost its broker retries with a growing pause (up to half a minute between
    # attempts), so on a loaded machine the batch may resume only well after Redis is back.
    # Now and then Celery 5.7's worker dies instead (kombu acknowledges a message on the closed
    # connection: "Unrecoverable error"); the process manager starts it again, as here. Either
    # way the rows keep what the broker lost.
    settled = all_settled(ids)

    def settled_with_a_process_manager() -> bool:
        workers_on_own_redis.revive("w1")
        return settled()

    pipeline.run_until(
        settled_with_a_process_manager, timeout=150, what="the batch to finish after Redis"
    )
    pipeline.run_for(REQUEUE_SECONDS + 1)

    assert lost > 0
    assert_each_delivered_once(mailbox, ids)


def test_two_dispatchers_at_once_hand_out_each_reminder_once(clinic, processes, mailbox, pipeline):
    ids = clinic.due_reminders(500)
    processes.worker("w1", concurrency=2)

    first, second = run_at_once(
        lambda: services.reminders_dispatch(limit=300),
        lambda: services.reminders_dispatch(limit=300),
    )

    assert not isinstance(first, Exception), first
    assert not isinstance(second, Exception), second
    assert set(first.handed_out).isdisjoint(second.handed_out)
    assert sorted(first.handed_out + second.handed_out) == sorted(ids)
    pipeline.run_until(all_settled(ids), timeout=60, what="500 reminders to go out")
    pipeline.run_for(REQUEUE_SECONDS + 1)
    assert_each_delivered_once(mailbox, ids)


def test_one_dispatch_task_hands_out_a_backlog_of_several_batches(clinic, processes, mailbox):
    """The worker's own dispatch tasks chain through a backlog: each full batch hands out the
    next dispatch amid its messages. No beat runs and the test process dispatches nothing."""
    from treatments.tasks import reminders_dispatch

    ids = clinic.due_reminders(230)
    processes.worker("w1", concurrency=2, REMINDER_DISPATCH_BATCH="50")

    reminders_dispatch.delay()

    wait_until(all_settled(ids), timeout=60, what="230 reminders to go out", every=0.2)
    time.sleep(1)  # a second copy of any message would arrive meanwhile
    assert_each_delivered_once(mailbox, ids)
    # Five batches of at most 50, each dispatched once (a dispatch after the last finds none).
    handed_out = Reminder.objects.filter(pk__in=ids).values_list("enqueued_at", flat=True)
    assert len(set(handed_out)) == 5


def test_two_beats_at_once_send_each_reminder_once(clinic, processes, mailbox):
    """Two `celery beat` processes each run the dispatcher and the sweeper every second; the
    test process does not dispatch at all."""
    ids = clinic.due_reminders(500)
    processes.worker("w1", concurrency=2)
    processes.beat("beat1", REMINDER_DISPATCH_SECONDS="1")
    processes.beat("beat2", REMINDER_DISPATCH_SECONDS="1")

    wait_until(all_settled(ids), timeout=60, what="500 reminders to go out", every=0.2)
    # Both beats go on dispatching; nothing may go out again meanwhile.
    time.sleep(REQUEUE_SECONDS + 1)

    for name in ("beat1", "beat2"):
        assert processes.running[name].poll() is None, processes.output(name)
    assert_each_delivered_once(mailbox, ids)


class Abandoned(Exception):
    """The booking's transaction is given up."""


def test_rolled_back_booking_sends_nothing_and_moved_or_cancelled_sessions_lose_old_reminders(
    clinic, processes, mailbox, pipeline
):
    """Booked less than 48 hours ahead, each session gets its one email reminder at once. The
    old reminders are already in the broker when the sessions move or are cancelled."""
    now = timezone.now()
    kept = clinic.book(now + timedelta(hours=5))
    moved = clinic.book(now + timedelta(hours=6))
    cancelled = clinic.book(now + timedelta(hours=7))
    with pytest.raises(Abandoned), transaction.atomic():
        abandoned = clinic.book(now + timedelta(hours=8))
        assert abandoned.reminders.filter(status=ReminderStatus.PENDING).count() == 1
        raise Abandoned
    old = {
        session.pk: session.reminders.get(status=ReminderStatus.PENDING).pk
        for session in (kept, moved, cancelled)
    }
    assert len(services.reminders_dispatch().handed_out) == 3

    services.session_move(
        session=moved,
        start=now + timedelta(hours=9),
        end=now + timedelta(hours=9, minutes=45),
        actor=clinic.desk,
    )
    services.session_cancel(
        session=cancelled, by_patient=True, reason="Cannot come", actor=clinic.desk
    )
    new = moved.reminders.get(status=ReminderStatus.PENDING).pk
    processes.worker("w1", concurrency=2)
    every = list(Reminder.objects.values_list("pk", flat=True))
    pipeline.run_until(all_settled(every), timeout=30, what="the reminders to settle")
    pipeline.run_for(REQUEUE_SECONDS + 1)

    assert mailbox.counts() == Counter({message_id(old[kept.pk]): 1, message_id(new): 1})
    assert Reminder.objects.count() == 4
    assert Reminder.objects.get(pk=old[moved.pk]).status == ReminderStatus.CANCELLED
    assert Reminder.objects.get(pk=old[cancelled.pk]).status == ReminderStatus.CANCELLED


def test_smtp_down_fails_visibly_after_retries_and_resend_works_once_it_is_back(
    clinic, processes, mailbox, pipeline, reception_client
):
    ids = clinic.due_reminders(3, sessions=1)
    mailbox.stop()
    processes.worker("w1", concurrency=1)

    pipeline.run_until(all_settled(ids), timeout=60, what="the reminders to fail")

    failed = Reminder.objects.filter(pk__in=ids)
    assert status_counts(ids) == {ReminderStatus.FAILED: 3}
    assert {r.attempts for r in failed} == {MAX_ATTEMPTS}
    assert all("Connection refused" in r.last_error for r in failed)
    changelist = reverse("admin:treatments_reminder_changelist")
    page = reception_client.get(changelist, {"status__exact": ReminderStatus.FAILED})
    assert page.status_code == 200
    for pk in ids:
        assert reverse("admin:treatments_reminder_change", args=[pk]) in page.text
    assert page.text.count("Connection refused") == 3

    mailbox.start()
    connections_before = mailbox.connections
    response = reception_client.post(changelist, {"action": "resend", "_selected_action": ids})
    assert response.status_code == 302
    pipeline.run_until(all_settled(ids), timeout=30, what="the resent reminders to go out")

    assert_each_delivered_once(mailbox, ids)
    # The worker connects again once and keeps that connection for the next messages.
    assert mailbox.connections - connections_before == 1
