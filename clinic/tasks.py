"""Tasks of the project itself, not of a domain app."""

from celery import shared_task


@shared_task(ignore_result=True)
def noop() -> None:
    """Does nothing. The benchmarks time a batch of these to know what the broker and the
    workers cost on their own (docs/benchmarks.md, "Reminders"); a health check may send one
    to see that a worker takes tasks."""
