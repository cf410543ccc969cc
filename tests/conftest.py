"""Shared fixtures, and the rules for tests that need a real service.

A test marked `postgres` or `redis` is skipped, with the reason in the summary, when that service
is not configured or does not answer; with REQUIRE_SERVICES=1 (CI) it fails instead."""

import os

import pytest
from django.conf import settings
from django.db import connection
from django.utils import translation

from clinic.accounts import user_set_roles
from clinic.roles import MANAGER, PRACTITIONER, RECEPTION, ROLE_PERMISSIONS, sync_roles
from tests.factories import UserFactory

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES", "") not in ("", "0")


def _database_description() -> str:
    db = settings.DATABASES["default"]
    if connection.vendor == "sqlite":
        return "sqlite (in-memory test database)"
    return (
        f"{connection.vendor} at {db.get('HOST') or 'socket'}:{db.get('PORT') or ''} "
        f"(test database {connection.creation._get_test_db_name()})"
    )


def _redis_problem() -> str | None:
    if not settings.REDIS_URL:
        return "REDIS_URL is not set"
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        return f"Redis at {settings.REDIS_URL} does not answer: {error}"
    return None


def pytest_report_header(config):
    return [
        f"database: {_database_description()}",
        f"redis: {settings.REDIS_URL or 'not configured'}",
        f"require services: {'yes' if REQUIRE_SERVICES else 'no'}",
    ]


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"database used: {_database_description()}")


def pytest_sessionstart(session):
    if REQUIRE_SERVICES and connection.vendor != "postgresql":
        pytest.exit(
            "REQUIRE_SERVICES=1 but the database is not PostgreSQL: set DATABASE_URL", returncode=3
        )


def _missing_service(item) -> str | None:
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        return f"needs PostgreSQL, but DATABASE_URL points at {connection.vendor}"
    if item.get_closest_marker("redis"):
        return _redis_problem()
    return None


def pytest_runtest_setup(item):
    problem = _missing_service(item)
    if problem is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{problem} (REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(f"{item.nodeid}: {problem}")


@pytest.fixture(autouse=True)
def _role_groups(request):
    """Transactional tests empty every table afterwards, the groups the data migrations made
    included; put them back for the tests that follow."""
    marker = request.node.get_closest_marker("django_db")
    if marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        from django.apps import apps

        request.getfixturevalue("transactional_db")
        sync_roles(apps, ROLE_PERMISSIONS)


@pytest.fixture(autouse=True)
def _default_language():
    """A request in another language (Accept-Language) leaves that language active in the
    thread; the next test starts in the default one again."""
    yield
    translation.deactivate()


def _user_in(role: str, username: str):
    return user_set_roles(user=UserFactory(username=username), roles=[role])


@pytest.fixture
def reception_user(db):
    return _user_in(RECEPTION, "reception")


@pytest.fixture
def practitioner_user(db):
    return _user_in(PRACTITIONER, "practitioner")


@pytest.fixture
def manager_user(db):
    return _user_in(MANAGER, "manager")


@pytest.fixture
def reception_client(client, reception_user):
    client.force_login(reception_user)
    return client


@pytest.fixture
def practitioner_client(client, practitioner_user):
    client.force_login(practitioner_user)
    return client


@pytest.fixture
def manager_client(client, manager_user):
    client.force_login(manager_user)
    return client
