"""A practitioner's session: my day, the safety banner, the day-of questions, products logged
from the lot proposed, completion (stock taken, record locked), an amendment and its history."""

import re
from datetime import datetime, time, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone
from playwright.sync_api import expect

from inventory.models import Lot
from patients.models import ConsentKind
from tests.factories import (
    ConsentFactory,
    PatientFactory,
    ProductFactory,
    ProtocolFactory,
    RoomFactory,
    ScreeningFactory,
    receive,
)
from treatments import services
from treatments.models import Session, SessionStatus

pytestmark = pytest.mark.django_db(transaction=True)


def _book_today(*, course, practitioner, room, desk, not_before: int = 8) -> Session:
    """Today's first hour the practitioner has free in the demo's diary."""
    today = timezone.localdate()
    for hour in range(not_before, 21):
        start = timezone.make_aware(datetime.combine(today, time(hour, 15)))
        try:
            return services.session_book(
                course=course,
                number=course.sessions.count() + 1,
                start=start,
                end=start + timedelta(minutes=30),
                practitioner=practitioner,
                room=room,
                actor=desk,
            )
        except ValidationError:
            continue
    raise AssertionError("no free hour today for the practitioner")


def _patient_with_course(*, given_name, practitioner, desk, protocol):
    patient = PatientFactory(given_name=given_name, family_name="Serra Vila")
    ConsentFactory(patient=patient, kind=ConsentKind.MESOTHERAPY)
    ScreeningFactory(patient=patient, taken_on=timezone.localdate() - timedelta(days=3))
    return services.course_plan(
        patient=patient,
        protocol=protocol,
        lead_practitioner=practitioner,
        start_date=timezone.localdate(),
        actor=desk,
    )


def test_practitioner(page, live_server, demo_clinic, login, shots):
    today = timezone.localdate()
    users = get_user_model().objects
    escoda, desk = users.get(username="dra.escoda"), users.get(username="reception")
    protocol = ProtocolFactory(name="Facial rejuvenation (journey)")
    room = RoomFactory(name="Cabina E2E")
    ha = ProductFactory(name="Hyaluronic acid 1% (journey)", category="hyaluronic_acid")
    receive(ha, lot_number="HA-EARLY", quantity="3", expiry=today + timedelta(days=30))
    receive(ha, lot_number="HA-LATE", quantity="5", expiry=today + timedelta(days=300))
    course = _patient_with_course(
        given_name="Marta", practitioner=escoda, desk=desk, protocol=protocol
    )
    session = _book_today(course=course, practitioner=escoda, room=room, desk=desk)
    later = _book_today(
        course=_patient_with_course(
            given_name="Clara", practitioner=escoda, desk=desk, protocol=protocol
        ),
        practitioner=escoda,
        room=room,
        desk=desk,
        not_before=timezone.localtime(session.scheduled_start).hour + 1,
    )

    login("dra.escoda")
    expect(page).to_have_url(f"{live_server.url}/practice/")
    expect(page.locator("h1")).to_contain_text("My day")
    mine = page.locator(f"a[href='/practice/sessions/{session.pk}/']")
    expect(mine).to_contain_text("Marta Serra Vila")
    expect(mine).to_contain_text("session 1 of 4")
    shots("my day")

    mine.click()
    # Screened three days ago: the banner asks for today's answers before treating.
    banner = page.locator("#safety-banner")
    expect(banner).to_contain_text("ask again before treating")
    shots("session")

    # Today she took ibuprofen: the answer is recorded and the banner warns of it instead.
    page.check("#id_day-nsaids_last_48h")
    page.click('button:has-text("Record today\'s answers")')
    expect(page.locator(".alert-success")).to_contain_text("Today's answers are recorded.")
    expect(banner.locator("li[data-code=nsaids]")).to_be_visible()
    expect(banner).not_to_contain_text("ask again before treating")
    latest = course.patient.screenings.order_by("-recorded_at").first()
    assert latest.nsaids_last_48h and latest.recorded_by == escoda

    # The lot proposed is the first usable one to expire, shown with what is on the shelf.
    page.click("summary:has-text('Usable lots')")
    usable = page.locator("details li", has_text="Hyaluronic acid 1% (journey)")
    expect(usable.first).to_have_text(re.compile(r"HA-EARLY · expires \S+ · 3$"))
    early = Lot.objects.get(lot_number="HA-EARLY")
    page.check("input[name='record-areas'][value='full_face']")
    page.select_option("#id_record-technique", "nappage")
    page.fill("#id_record-needle_gauge", "32")
    page.fill("#id_record-needle_length_mm", "4")
    page.fill("#id_record-depth_mm", "1.5")
    page.fill("#id_record-pain_score", "2")
    page.check("#id_record-aftercare_given")
    page.select_option("#id_lines-0-product", str(ha.pk))
    page.select_option("#id_lines-0-lot", str(early.pk))
    page.fill("#id_lines-0-quantity", "2")
    page.fill("#id_lines-0-volume_ml", "2")
    page.select_option("#id_lines-0-area", "full_face")
    page.check("input[name=acknowledge][value=nsaids]")
    shots("session filled in")
    page.click("button:has-text('Complete and sign')")

    expect(page.locator(".alert-success")).to_contain_text("completed and signed")
    session.refresh_from_db()
    assert session.status == SessionStatus.COMPLETED and session.signed_by == escoda
    assert session.acknowledged_warnings == ["nsaids"]
    line = session.products.get()
    assert (line.lot.lot_number, line.quantity) == ("HA-EARLY", 2)
    early.refresh_from_db()
    assert early.quantity_on_hand == 1
    # Locked: the signed record, no form to complete it again, only the amendment.
    expect(page.locator("h2", has_text="Signed by")).to_be_visible()
    expect(page.locator("button:has-text('Complete and sign')")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("HA-EARLY")
    shots("session signed")

    # The next patient's page shows the stock that is left.
    page.goto(f"{live_server.url}/practice/sessions/{later.pk}/")
    page.click("summary:has-text('Usable lots')")
    expect(page.locator("details li", has_text="HA-EARLY")).to_have_text(
        re.compile(r"HA-EARLY · expires \S+ · 1$")
    )

    # An amendment needs a reason; the course page shows it in the history.
    page.goto(f"{live_server.url}/practice/sessions/{session.pk}/")
    page.click("a:has-text('Amend with a reason')")
    expect(page.locator("h1")).to_contain_text("Amend the session")
    page.fill("#id_record-pain_score", "6")
    page.click("button:has-text('Record the amendment')")
    expect(page.locator("#id_reason")).to_have_attribute("required", "")
    page.fill("#id_reason", "Pain score told after the session")
    shots("amend")
    page.click("button:has-text('Record the amendment')")
    expect(page).to_have_url(f"{live_server.url}/practice/sessions/{session.pk}/")
    session.refresh_from_db()
    assert session.pain_score == 6
    assert session.history.first().history_change_reason == "Pain score told after the session"
    early.refresh_from_db()
    assert early.quantity_on_hand == 1  # the product lines did not change

    page.click(f"a[href='/practice/courses/{course.pk}/']")
    expect(page.locator("main")).to_contain_text("Pain score told after the session")
    shots("course history")
