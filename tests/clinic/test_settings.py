"""Production mode: refuses to start half-configured, and passes Django's deployment checks with
the production variables that .env.example documents."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "k3y-" + "x9Q2vL7pR4tY8wB1nM6cF0hJ5sD3gA" * 2,
    "DJANGO_ALLOWED_HOSTS": "clinic.example.com",
    "DATABASE_URL": "sqlite:////tmp/clinic-settings-check.sqlite3",
}


def manage(*args: str, **environment: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(DJANGO_SETTINGS_MODULE="clinic.settings", **environment)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_a_secret_key():
    environment = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_SECRET_KEY"}
    result = manage("check", **environment)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    environment = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_ALLOWED_HOSTS"}
    result = manage("check", **environment)
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS is not set" in result.stderr


def test_deploy_check_passes_with_the_documented_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr + result.stdout


def test_env_example_documents_every_setting_the_code_reads():
    documented = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and line.lstrip("# ").split("=", 1)[0].isupper()
    }
    source = (ROOT / "clinic" / "settings.py").read_text()
    import re

    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', source))
    read |= set(re.findall(r'"([A-Z_]+)" not in env', source))
    assert read - documented == set()


def test_defaults_are_the_clinics():
    assert settings.TIME_ZONE == "Europe/Madrid"
    assert settings.USE_TZ is True
    assert [code for code, _ in settings.LANGUAGES] == ["en", "es"]
    assert settings.DEFAULT_AUTO_FIELD == "django.db.models.BigAutoField"


@pytest.mark.parametrize("language", ["es"])
def test_spanish_translations_are_compiled(language):
    assert (ROOT / "locale" / language / "LC_MESSAGES" / "django.mo").is_file()


def test_every_string_has_its_spanish_translation():
    """Each entry of the Spanish catalogue has a translation and none is marked fuzzy."""
    catalogue = (ROOT / "locale" / "es" / "LC_MESSAGES" / "django.po").read_text()
    missing = []
    for entry in catalogue.split("\n\n")[1:]:
        lines = [line for line in entry.splitlines() if not line.startswith("#")]
        assert "#, fuzzy" not in entry, entry
        text = "\n".join(lines)
        if "msgstr" not in text:
            continue
        translated = text.split("msgstr", 1)[1]
        if not any(part.strip('" \n') for part in translated.split("\n")):
            missing.append(text.split("msgstr", 1)[0].strip())
    assert missing == []


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "es"])
def test_date_fields_of_the_pages_render_as_browsers_read_them_in_any_language(language):
    """<input type="date"> only takes ISO dates: a field re-shown after an error keeps its
    value in Spanish as in English."""
    from datetime import date

    from django.utils import translation

    from inventory.forms import ReportFilterForm
    from treatments.forms import PlannedSessionForm

    with translation.override(language):
        report = ReportFilterForm(
            initial={"date_from": date(2028, 4, 11)}, fields=["date_from", "date_to"]
        ).as_p()
        planned = PlannedSessionForm(initial={"day": date(2028, 4, 11)}).as_p()

    assert 'value="2028-04-11"' in report
    assert 'value="2028-04-11"' in planned
