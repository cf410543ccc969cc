"""A lock held until the end of the transaction on anything that has no row to lock yet (a
patient about to be registered, a delivery note about to be received)."""

from django.db import connection


def advisory_lock(key: str) -> None:
    """Waits until no other transaction holds `key`, then holds it until this one ends.
    PostgreSQL only: SQLite, for development, serialises writers by itself."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [key])
