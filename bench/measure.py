"""What the benchmark scripts share."""

import math
import socket


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
