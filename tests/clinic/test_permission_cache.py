"""Each user's permissions are kept in the cache between requests, and every change that can
alter them is seen on the very next request."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clinic.accounts import user_set_roles
from clinic.roles import MANAGER, PRACTITIONER

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _cache_on(settings):
    settings.PERMISSION_CACHE_SECONDS = 300


REPORTS = reverse("reports:stock_valuation")


def permission_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if "auth_permission" in q["sql"]]


def test_a_second_request_reads_no_permission(manager_client):
    with CaptureQueriesContext(connection) as first:
        assert manager_client.get(REPORTS).status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert manager_client.get(REPORTS).status_code == 200
    assert permission_queries(first.captured_queries)
    assert permission_queries(second.captured_queries) == []


def test_a_role_taken_away_is_seen_on_the_next_request(manager_client, manager_user):
    assert manager_client.get(REPORTS).status_code == 200
    user_set_roles(user=manager_user, roles=[PRACTITIONER])
    assert manager_client.get(REPORTS).status_code == 403


def test_a_permission_taken_from_the_role_is_seen_on_the_next_request(manager_client):
    assert manager_client.get(REPORTS).status_code == 200
    Group.objects.get(name=MANAGER).permissions.remove(
        Permission.objects.get(codename="view_reports")
    )
    assert manager_client.get(REPORTS).status_code == 403


def test_a_deleted_role_is_seen_on_the_next_request(manager_client):
    assert manager_client.get(REPORTS).status_code == 200
    Group.objects.get(name=MANAGER).delete()
    assert manager_client.get(REPORTS).status_code == 403


def test_a_role_given_is_seen_on_the_next_request(practitioner_client, practitioner_user):
    assert practitioner_client.get(REPORTS).status_code == 403
    user_set_roles(user=practitioner_user, roles=[PRACTITIONER, MANAGER])
    assert practitioner_client.get(REPORTS).status_code == 200


def test_superuser_status_taken_away_is_seen_on_the_next_request(client, django_user_model):
    boss = django_user_model.objects.create_user("boss", password="x", is_superuser=True)
    client.force_login(boss)
    assert client.get(REPORTS).status_code == 200
    boss.is_superuser = False
    boss.save()
    assert client.get(REPORTS).status_code == 403


def test_a_migration_run_starts_a_new_generation(manager_client):
    from django.core.cache import cache

    from clinic.auth_backends import GENERATION_KEY

    manager_client.get(REPORTS)
    before = cache.get(GENERATION_KEY)
    call_command("migrate", verbosity=0)
    assert cache.get(GENERATION_KEY) not in (None, before)


def test_without_a_shared_cache_permissions_are_read_on_every_request(settings, manager_client):
    settings.PERMISSION_CACHE_SECONDS = 0
    manager_client.get(REPORTS)
    with CaptureQueriesContext(connection) as second:
        assert manager_client.get(REPORTS).status_code == 200
    assert permission_queries(second.captured_queries)
