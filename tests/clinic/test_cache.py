"""The Redis cache keeps one Redis client per connection pool (clinic/cache.py)."""

import os

import pytest
from django.core.cache import caches

from clinic.cache import ClinicRedisCache

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_cache():
    backend = caches["default"]
    assert isinstance(backend, ClinicRedisCache)
    yield backend
    backend.delete_many(["clinic-cache-test", "clinic-cache-test-child"])


def test_every_call_uses_the_same_client_and_the_values_go_round(redis_cache):
    client = redis_cache._cache.get_client(write=True)
    assert redis_cache._cache.get_client() is client
    redis_cache.set("clinic-cache-test", {"answer": 42})
    assert redis_cache.get("clinic-cache-test") == {"answer": 42}
    assert redis_cache._cache.get_client("clinic-cache-test") is client


def test_a_forked_process_uses_the_kept_client_on_its_own_connection(redis_cache):
    """A worker forked after the parent has used the cache (Celery's prefork pool, a server's
    workers) reads and writes through the client it inherits, without sharing a socket."""
    redis_cache.set("clinic-cache-test", "parent")
    parent_connection = redis_cache._cache.get_client().client_id()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child, which exits at once
        outcome = b"error"
        try:
            client = redis_cache._cache.get_client()
            if redis_cache.get("clinic-cache-test") == "parent":
                redis_cache.set("clinic-cache-test-child", client.client_id())
                outcome = b"ok"
        finally:
            os.write(write_end, outcome)
            os._exit(0)
    os.close(write_end)
    assert os.read(read_end, 16) == b"ok"
    os.waitpid(child, 0)
    os.close(read_end)
    child_connection = redis_cache.get("clinic-cache-test-child")
    assert child_connection is not None and child_connection != parent_connection
    assert redis_cache._cache.get_client().client_id() == parent_connection
