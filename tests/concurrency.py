"""Running work in real threads at the same moment, for the tests that prove the locks."""

import threading
from collections.abc import Callable

from django.db import connection


def run_at_once(*works: Callable[[], object], timeout: float = 60) -> list[object]:
    """Starts one thread per callable, releases them together, and returns what each returned
    or the exception it raised, in the order given. Each thread closes its own connection."""
    barrier = threading.Barrier(len(works))
    results: list[object] = [None] * len(works)

    def run(index, work):
        try:
            barrier.wait(timeout=timeout)
            results[index] = work()
        except Exception as error:  # noqa: BLE001 - the test reads what was raised
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, work)) for index, work in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    return results
