"""Celery tasks: they take ids, call a service and own their retries (services/reminders.py)."""

from celery import shared_task

from .services import reminders


@shared_task(acks_late=True, ignore_result=True)
def reminders_dispatch() -> int:
    """From beat, every REMINDER_DISPATCH_SECONDS. A full batch means more are due: the next
    batch is handed out at once (amid this one's messages) instead of a minute later."""
    return len(reminders.reminders_dispatch(follow_up=True).handed_out)


@shared_task(acks_late=True, ignore_result=True)
def reminders_sweep() -> int:
    return reminders.reminders_sweep()


# A send is bounded (EMAIL_TIMEOUT, SMS_TIMEOUT_SECONDS, then these limits) well inside
# REMINDER_CLAIM_TIMEOUT_SECONDS, so the sweeper never takes back the claim of a worker that is
# merely slow and two workers never send the same reminder at once.
@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=None,
    soft_time_limit=90,
    time_limit=120,
)
def reminder_send(self, reminder_id: int) -> str:
    outcome = reminders.reminder_send(reminder_id=reminder_id)
    if outcome.retry_in is not None:
        # The row remembers the attempts (REMINDER_MAX_ATTEMPTS); Celery only waits.
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(autoretry_for=(OSError,), retry_backoff=60, retry_jitter=True, max_retries=5)
def session_cancelled_notify(session_id: int) -> int:
    """Tells reception that a patient cancelled from a reminder link."""
    from .services.links import reception_notify_cancellation

    return reception_notify_cancellation(session_id=session_id)
