"""What the benchmark scripts share (and the integration tests, which start processes too)."""

import math
import os
import socket
from urllib.parse import quote


def percentile(samples: list[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (so with 15 samples the 95th percentile
    lies between the two slowest)."""
    ordered = sorted(samples)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def free_port() -> int:
    """A free TCP port on loopback, for a server the benchmark starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    """Django's default database as a URL, for the processes a benchmark or a test starts (in
    a test, NAME is the test database's)."""
    from django.db import connection

    db = connection.settings_dict
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if user else ""
    return f"postgres://{credentials}{db.get('HOST') or ''}:{db.get('PORT') or 5432}/{db['NAME']}"


def environment_without(*prefixes: str) -> dict[str, str]:
    """This process's environment less the variables named with `prefixes`, for a child whose
    settings the caller sets itself."""
    return {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
