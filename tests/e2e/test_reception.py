"""Reception in the admin: registers a patient with screening and consent, plans a course from a
protocol, books its sessions, moves one and sees its reminders."""

from datetime import time, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from patients.models import Patient
from treatments.models import Course, ReminderStatus, Room, Session

pytestmark = pytest.mark.django_db(transaction=True)


def test_reception(page, live_server, demo_clinic, login, shots):
    today = timezone.localdate()
    login("reception")
    expect(page).to_have_url(f"{live_server.url}/admin/")
    shots("admin home")

    # A new patient, with a mesotherapy consent and a screening reviewed with her.
    page.goto(f"{live_server.url}/admin/patients/patient/add/")
    page.fill("#id_given_name", "Lucía")
    page.fill("#id_family_name", "Prats Oliver")
    page.fill("#id_date_of_birth", "1984-06-21")
    page.select_option("#id_sex", "female")
    page.fill("#id_email", "lucia.prats@example.com")
    page.fill("#id_mobile_phone", "+34 612 345 678")
    page.select_option("#id_preferred_channel", "email")
    page.select_option("#id_consents-0-kind", "mesotherapy")
    page.fill("#id_consents-0-form_version", "2025-01")
    page.fill("#id_consents-0-signed_at_0", today.isoformat())
    # 09:30, or the current minute before then: a consent signed later today would be in the
    # future, and refused, when the test runs in the small hours.
    signed = min(time(9, 30), timezone.localtime().time())
    page.fill("#id_consents-0-signed_at_1", signed.strftime("%H:%M"))
    page.check("#id_screenings-0-anticoagulants")
    page.check("#id_screenings-0-reviewed_with_patient")
    shots("patient add")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    patient = Patient.objects.get(family_name="Prats Oliver")
    consent = patient.consents.get()
    screening = patient.screenings.get()
    assert (consent.kind, consent.recorded_by.username) == ("mesotherapy", "reception")
    assert screening.anticoagulants and screening.recorded_by.username == "reception"
    expect(page.locator(".field-safety_summary")).to_contain_text("nticoagulant")
    shots("patient change")

    # A course from a protocol, then its sessions at the dates proposed, at 19:15.
    page.goto(f"{live_server.url}/admin/treatments/course/add/")
    page.click("#id_patient + .select2 .select2-selection")
    page.fill(".select2-search__field", "Prats")
    page.click(".select2-results__option:has-text('Prats Oliver')")
    page.select_option("#id_protocol", label="Facial rejuvenation, 4 sessions")
    escoda = get_user_model().objects.get(username="dra.escoda")
    page.select_option("#id_lead_practitioner", str(escoda.pk))
    start = today + timedelta(days=60)
    page.fill("#id_start_date", start.isoformat())
    shots("course add")
    page.click("input[name=_save]")
    expect(page.locator("h1")).to_contain_text("Book the sessions")
    course = Course.objects.get(patient=patient)
    room = Room.objects.filter(active=True).order_by("name").first()
    rows = page.locator("form tbody tr")
    expect(rows).to_have_count(4)
    for index in range(4):
        page.fill(f"#id_form-{index}-start", "19:15")
        page.select_option(f"#id_form-{index}-practitioner", str(escoda.pk))
        page.select_option(f"#id_form-{index}-room", str(room.pk))
    shots("book sessions")
    page.click("input[type=submit][value='Book these sessions']")
    expect(page.locator(".messagelist")).to_contain_text("4 session(s) booked.")
    sessions = list(course.sessions.order_by("number"))
    assert [s.number for s in sessions] == [1, 2, 3, 4]
    assert all(timezone.localtime(s.scheduled_start).strftime("%H:%M") == "19:15" for s in sessions)
    assert sessions[0].scheduled_start.date() >= start - timedelta(days=1)
    assert all(s.reminders.filter(status=ReminderStatus.PENDING).exists() for s in sessions)
    shots("course with sessions")

    # Session 2 moves two days later: its reminders are planned again for the new time.
    second = sessions[1]
    old_reminders = set(second.reminders.values_list("pk", flat=True))
    page.click(f"a[href$='/admin/treatments/session/{second.pk}/change/']")
    expect(page.locator("h1")).to_contain_text("Change session")
    new_day = timezone.localdate(second.scheduled_start) + timedelta(days=2)
    page.fill("#id_scheduled_start_0", new_day.isoformat())
    page.fill("#id_scheduled_end_0", new_day.isoformat())
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    second.refresh_from_db()
    assert timezone.localdate(second.scheduled_start) == new_day
    assert not second.reminders.filter(pk__in=old_reminders, status=ReminderStatus.PENDING).exists()
    pending = second.reminders.filter(status=ReminderStatus.PENDING).order_by("due_at")
    assert pending.count() == 2
    assert all(r.due_at < second.scheduled_start for r in pending)
    assert Session.history.filter(id=second.pk, history_user__username="reception").exists()

    # Its reminders, on the session's page and in the reminders list.
    reminders = page.locator("#reminders-group")
    expect(reminders).to_contain_text("Pending")
    expect(reminders).to_contain_text("Cancelled")
    shots("session moved")
    page.goto(f"{live_server.url}/admin/treatments/reminder/?q=Prats")
    expect(page.locator("#result_list tbody tr")).to_have_count(
        sum(s.reminders.count() for s in sessions)
    )
    shots("reminders")
