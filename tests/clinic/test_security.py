"""Logging in and staying logged in: throttling (django-axes), the client's address behind
proxies, the idle timeout, the admin's second factor (django-otp), and the security headers."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic.accounts import user_set_roles
from clinic.net import client_ip
from clinic.roles import PRACTITIONER, RECEPTION
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def log_in(client, username, password, address="10.0.0.1", **headers):
    return client.post(
        reverse("login"),
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        **headers,
    )


# Throttling


def test_five_wrong_passwords_lock_that_username_from_that_address(client):
    UserFactory(username="rocio")
    for _attempt in range(4):
        assert log_in(client, "rocio", "wrong").status_code == 200
    assert log_in(client, "rocio", "wrong").status_code == 429  # the fifth failure locks

    locked = log_in(client, "rocio", PASSWORD)

    assert locked.status_code == 429
    assert "Too many failed attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lock_is_for_the_pair_not_the_user_everywhere_nor_the_address_for_everyone(client):
    UserFactory(username="rocio")
    UserFactory(username="marc")
    for _attempt in range(5):
        log_in(client, "rocio", "wrong", address="10.0.0.1")

    assert log_in(client, "rocio", PASSWORD, address="10.0.0.2").status_code == 302
    client.logout()
    assert log_in(client, "marc", PASSWORD, address="10.0.0.1").status_code == 302


def test_the_lock_lifts_after_the_cooloff(client, settings):
    UserFactory(username="rocio")
    for _attempt in range(5):
        log_in(client, "rocio", "wrong")

    with time_machine.travel(timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(minutes=1)):
        assert log_in(client, "rocio", PASSWORD).status_code == 302


def test_a_spoofed_forwarded_for_does_not_escape_the_lock(client):
    UserFactory(username="rocio")
    for attempt in range(6):
        response = log_in(client, "rocio", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}")

    assert response.status_code == 429


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.1"),  # no proxy: the header is the client's own words
        (1, "203.0.113.9", "203.0.113.9"),  # our proxy appended the client's address
        (1, "198.51.100.7, 203.0.113.9", "203.0.113.9"),  # the client prepended a lie
        (2, "198.51.100.7, 203.0.113.9, 10.1.1.1", "203.0.113.9"),  # two proxies of ours
    ],
)
def test_the_clients_address_is_read_from_the_right_behind_trusted_proxies(
    settings, proxies, forwarded, expected
):
    settings.CLINIC_TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)

    assert client_ip(request) == expected


# Idle timeout


def test_a_session_ends_after_thirty_idle_minutes_and_lives_on_while_used(client):
    user = user_set_roles(user=UserFactory(username="nuria"), roles=[PRACTITIONER])
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        client.force_login(user)
        assert client.get(reverse("treatments:my_day")).status_code == 200
        for _step in range(4):  # two hours of work, a request every 25 minutes
            clock.shift(timedelta(minutes=25))
            assert client.get(reverse("treatments:my_day")).status_code == 200

        clock.shift(timedelta(minutes=31))
        response = client.get(reverse("treatments:my_day"))

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# The admin's second factor


@pytest.fixture
def two_factor_on(settings):
    settings.CLINIC_ADMIN_REQUIRES_2FA = True


def test_staff_enrol_an_authenticator_before_the_admin_opens(client, two_factor_on):
    user = user_set_roles(user=UserFactory(username="rocio"), roles=[RECEPTION])
    log_in(client, "rocio", PASSWORD)

    response = client.get(reverse("admin:index"), follow=True)

    page = response.content.decode()
    assert response.redirect_chain[-1][0].startswith(reverse("two_factor"))
    assert "<svg" in page and "scan this code" in page
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    secret = re.search(r'<code class="user-select-all">([A-Z2-7 ]+)</code>', page).group(1)
    assert secret.replace(" ", "") == __import__("base64").b32encode(device.bin_key).decode()

    wrong = client.post(reverse("two_factor"), {"code": "000000", "next": "/admin/"})
    assert "That code is not right" in wrong.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302

    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.save()
    right = client.post(
        reverse("two_factor"), {"code": f"{totp(device.bin_key):06d}", "next": "/admin/"}
    )
    assert right.status_code == 302 and right["Location"] == "/admin/"
    assert client.get(reverse("admin:index")).status_code == 200
    device.refresh_from_db()
    assert device.confirmed


def test_an_enrolled_member_types_a_code_at_each_login(client, two_factor_on):
    user = user_set_roles(user=UserFactory(username="rocio"), roles=[RECEPTION])
    device = TOTPDevice.objects.create(user=user, confirmed=True, name="phone")
    log_in(client, "rocio", PASSWORD)

    page = client.get(reverse("admin:index"), follow=True).content.decode()
    assert "scan this code" not in page and "Type the code your authenticator app shows" in page

    client.post(reverse("two_factor"), {"code": f"{totp(device.bin_key):06d}"})
    assert client.get(reverse("admin:patients_patient_changelist")).status_code == 200


def test_the_second_factor_is_not_asked_of_practitioners_on_their_pages(client, two_factor_on):
    user_set_roles(user=UserFactory(username="nuria"), roles=[PRACTITIONER])
    log_in(client, "nuria", PASSWORD)

    assert client.get(reverse("treatments:my_day")).status_code == 200


def test_the_two_factor_page_refuses_to_send_anyone_off_site(client, two_factor_on):
    user = user_set_roles(user=UserFactory(username="rocio"), roles=[RECEPTION])
    device = TOTPDevice.objects.create(user=user, confirmed=True, name="phone")
    log_in(client, "rocio", PASSWORD)

    response = client.post(
        reverse("two_factor"),
        {"code": f"{totp(device.bin_key):06d}", "next": "https://evil.example/"},
    )

    assert response["Location"] == "/admin/"


# Headers and pages


def test_pages_carry_a_content_security_policy_without_inline_scripts(client):
    response = client.get(reverse("login"))

    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_no_template_has_an_inline_script_or_event_handler():
    offenders = []
    for template in ROOT.glob("*/templates/**/*.html"):
        text = template.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\son[a-z]+=", text):
            offenders.append(str(template.relative_to(ROOT)))
    assert offenders == []
