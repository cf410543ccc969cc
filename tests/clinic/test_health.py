import pytest
from django.core.cache import cache
from django.test import override_settings

pytestmark = pytest.mark.django_db


@override_settings(REDIS_URL="")
def test_health_answers_without_login_when_the_database_answers(client):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.redis
def test_health_checks_redis_through_the_cache(client, settings):
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    response = client.get("/health/")
    assert response.json()["redis"] == "ok"
    cache.set("health-probe", "value")
    import redis

    raw = redis.Redis.from_url(settings.REDIS_URL)
    assert any(b"health-probe" in key for key in raw.keys("*health-probe*"))


@override_settings(
    REDIS_URL="redis://127.0.0.1:1/0",
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    },
)
def test_health_reports_an_unreachable_redis(client):
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["redis"].startswith("error")
    assert response.json()["database"] == "ok"
