from celery import shared_task
from django.utils import timezone

from .alerts import stock_digest_send


@shared_task(autoretry_for=(OSError,), retry_backoff=60, retry_jitter=True, max_retries=5)
def stock_digest() -> bool:
    """Daily, from beat. Safe to run twice: the digest goes out once a day."""
    return stock_digest_send(day=timezone.localdate())
