from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory.models import Lot
from patients.models import Screening
from tests.factories import PatientFactory, ProductFactory, ScreeningFactory, receive
from tests.treatments.conftest import at
from treatments import services
from treatments.models import Session, SessionStatus
from treatments.services import ProductLine

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()


@pytest.fixture
def client_of(client, practitioner):
    client.force_login(practitioner)
    return client


def session_form(start=None, end=None, **fields) -> dict:
    """The admin's session change form as a browser posts it: the new times (if the session
    can still move), the other fields, and the read-only inlines (product lines, reminders) as
    they come back when nothing in them was touched."""
    data = {
        f"{inline}-{name}": "0"
        for inline in ("products", "reminders")
        for name in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS", "MAX_NUM_FORMS")
    }
    for name, moment in (("scheduled_start", start), ("scheduled_end", end)):
        if moment is not None:
            local = timezone.localtime(moment)
            data[f"{name}_0"], data[f"{name}_1"] = (
                local.strftime("%Y-%m-%d"),
                local.strftime("%H:%M:%S"),
            )
    return {**data, **fields}


def complete_form(ha, **extra):
    data = {
        "action": "complete",
        "record-areas": ["full_face"],
        "record-technique": "nappage",
        "record-needle_gauge": "32",
        "record-needle_length_mm": "4",
        "record-depth_mm": "1.5",
        "record-aftercare_given": "on",
        "record-pain_score": "2",
        "lines-TOTAL_FORMS": "3",
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
        "lines-0-product": str(ha.pk),
        "lines-0-quantity": "2",
        "lines-0-area": "full_face",
        "lines-0-volume_ml": "2",
    }
    data.update(extra)
    return data


def test_my_day_lists_todays_sessions_in_time_order(
    client_of, course, practitioner, room, desk, django_assert_max_num_queries
):
    services.session_book(
        course=course,
        number=2,
        start=at(TODAY, 16),
        end=at(TODAY, 17),
        practitioner=practitioner,
        room=room,
        actor=desk,
    )
    services.session_book(
        course=course,
        number=1,
        start=at(TODAY, 9),
        end=at(TODAY, 10),
        practitioner=practitioner,
        room=room,
        actor=desk,
    )
    url = reverse("treatments:my_day")
    client_of.get(url)
    with django_assert_max_num_queries(10) as few:
        page = client_of.get(url).content.decode()
    assert page.index("09:00") < page.index("16:00")
    assert "session 1 of 4" in page and "clear" in page
    for hour in (11, 13, 14):
        other = services.course_plan(
            patient=PatientFactory(),
            protocol=course.protocol,
            lead_practitioner=practitioner,
            start_date=TODAY,
            actor=desk,
        )
        services.session_book(
            course=other,
            number=1,
            start=at(TODAY, hour),
            end=at(TODAY, hour, 30),
            practitioner=practitioner,
            room=room,
            actor=desk,
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client_of.get(url).content.decode()
    assert page.count("list-group-item-action") == 5
    assert "hard stop" in page  # the new patients have no consent


def test_session_page_shows_the_banner_and_records_the_day_of_questions(
    client_of, today_session, practitioner
):
    url = reverse("treatments:session", args=[today_session.pk])
    page = client_of.get(url).content.decode()
    assert 'id="safety-banner"' in page and "No contraindication on file" in page
    response = client_of.post(url, {"action": "questions", "day-nsaids_last_48h": "on"})
    assert response.status_code == 302
    latest = Screening.objects.filter(patient=today_session.course.patient).first()
    assert latest.nsaids_last_48h and latest.recorded_by == practitioner
    page = client_of.get(url).content.decode()
    assert 'data-code="nsaids"' in page and 'name="acknowledge" value="nsaids"' in page


def test_completing_from_the_page_takes_stock_and_locks_the_session(client_of, today_session, ha):
    url = reverse("treatments:session", args=[today_session.pk])
    response = client_of.post(url, complete_form(ha))
    assert response.status_code == 302
    today_session.refresh_from_db()
    assert today_session.status == SessionStatus.COMPLETED
    assert Lot.objects.get(lot_number="EARLY").quantity_on_hand == 1
    again = client_of.post(url, complete_form(ha), follow=True)
    assert "already completed" in again.content.decode()
    assert Lot.objects.get(lot_number="EARLY").quantity_on_hand == 1
    page = client_of.get(url).content.decode()
    assert "Signed by" in page and 'name="action" value="complete"' not in page
    assert "Amend with a reason" in page


def test_an_unacknowledged_warning_is_shown_on_the_form(client_of, today_session, patient, ha):
    ScreeningFactory(
        patient=patient,
        taken_on=TODAY,
        keloid_tendency=True,
        recorded_at=timezone.now() + timedelta(minutes=1),
    )
    url = reverse("treatments:session", args=[today_session.pk])
    response = client_of.post(url, complete_form(ha))
    assert response.status_code == 200
    assert "Acknowledge: Keloid tendency" in response.content.decode()
    response = client_of.post(url, complete_form(ha, acknowledge="keloid"))
    assert response.status_code == 302


def test_a_depth_beyond_the_needle_is_refused_on_the_form(client_of, today_session, ha):
    url = reverse("treatments:session", args=[today_session.pk])
    response = client_of.post(url, complete_form(ha, **{"record-depth_mm": "6"}))
    assert "more than the needle" in response.content.decode()
    today_session.refresh_from_db()
    assert today_session.status == SessionStatus.SCHEDULED


def test_amending_from_the_page(client_of, today_session, practitioner, ha):
    services.session_complete(
        session=today_session,
        record={"technique": "nappage"},
        lines=[ProductLine(product=ha, quantity=Decimal(2))],
        acknowledged=[],
        actor=practitioner,
    )
    url = reverse("treatments:session_amend", args=[today_session.pk])
    form = client_of.get(url).context["lines"]
    assert form.initial[0]["quantity"] == 2
    data = complete_form(
        ha,
        reason="pain score missed",
        **{"record-pain_score": "6", "lines-0-quantity": "2", "lines-TOTAL_FORMS": "1"},
    )
    data.pop("action")
    response = client_of.post(url, data)
    assert response.status_code == 302, response.context["record_form"].errors
    today_session.refresh_from_db()
    assert today_session.pain_score == 6
    assert today_session.history.first().history_change_reason == "pain score missed"


def test_course_page_shows_the_timeline_and_the_history(
    client_of, today_session, practitioner, desk, ha, django_assert_max_num_queries
):
    services.session_move(
        session=today_session,
        start=at(TODAY, 12),
        end=at(TODAY, 13),
        actor=desk,
        reason="patient late",
    )
    services.session_complete(
        session=today_session,
        record={"technique": "nappage"},
        lines=[ProductLine(product=ha, quantity=Decimal(1))],
        acknowledged=[],
        actor=practitioner,
    )
    url = reverse("treatments:course", args=[today_session.course_id])
    with django_assert_max_num_queries(14):
        page = client_of.get(url).content.decode()
    assert "patient late" in page and "Completed and signed" in page
    assert "EARLY" in page


def test_recall_lists_every_patient_who_received_a_lot(
    manager_client, today_session, practitioner, ha
):
    services.session_complete(
        session=today_session,
        record={"technique": "nappage"},
        lines=[ProductLine(product=ha, quantity=Decimal(2))],
        acknowledged=[],
        actor=practitioner,
    )
    lot = Lot.objects.get(lot_number="EARLY")
    url = reverse("reports:stock_lot_recall", args=[lot.pk])
    page = manager_client.get(url).content.decode()
    patient = today_session.course.patient
    assert patient.full_name in page and str(patient.mobile_phone) in page
    csv = manager_client.get(url, {"format": "csv"}).content.decode("utf-8-sig")
    assert patient.full_name in csv and patient.email in csv


def test_the_recall_list_shows_a_page_at_a_time_and_the_csv_everything(
    manager_client, today_session, practitioner, ha, monkeypatch
):
    from treatments import views

    services.session_complete(
        session=today_session,
        record={"technique": "nappage"},
        lines=[ProductLine(product=ha, quantity=Decimal(1)) for _ in range(3)],
        acknowledged=[],
        actor=practitioner,
    )
    monkeypatch.setattr(views, "RECALL_ROWS_PER_PAGE", 2)
    lot = Lot.objects.get(lot_number="EARLY")
    url = reverse("reports:stock_lot_recall", args=[lot.pk])

    first = manager_client.get(url)
    second = manager_client.get(url, {"page": 2})
    csv = manager_client.get(url, {"format": "csv"}).content.decode("utf-8-sig")

    assert len(first.context["lines"]) == 2 and len(second.context["lines"]) == 1
    assert first.context["patients"] == 1 and "1 / 2" in first.content.decode()
    assert len(csv.strip().splitlines()) == 1 + 3


def test_booking_a_course_from_the_admin(reception_client, course, room):
    url = reverse("admin:treatments_course_plan", args=[course.pk])
    response = reception_client.get(url)
    formset = response.context["formset"]
    assert len(formset.forms) == 4
    data = {
        "form-TOTAL_FORMS": "4",
        "form-INITIAL_FORMS": "4",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
    }
    for index, initial in enumerate(formset.initial):
        data.update(
            {
                f"form-{index}-number": initial["number"],
                f"form-{index}-day": initial["day"].isoformat(),
                f"form-{index}-start": "10:00",
                f"form-{index}-minutes": "45",
                f"form-{index}-practitioner": initial["practitioner"],
                f"form-{index}-room": room.pk,
            }
        )
    data["form-1-day"] = (formset.initial[0]["day"] + timedelta(days=5)).isoformat()
    response = reception_client.post(url, data, follow=True)
    assert Session.objects.filter(course=course).count() == 4
    assert "Session 2 is 5 days after the one before" in response.content.decode()


def test_a_clash_in_the_plan_books_nothing(reception_client, course, room, practitioner, desk):
    services.session_book(
        course=services.course_plan(
            patient=PatientFactory(),
            protocol=course.protocol,
            lead_practitioner=practitioner,
            start_date=TODAY,
            actor=desk,
        ),
        number=1,
        start=at(TODAY + timedelta(days=40), 10),
        end=at(TODAY + timedelta(days=40), 11),
        practitioner=practitioner,
        room=room,
        actor=desk,
    )
    url = reverse("admin:treatments_course_plan", args=[course.pk])
    data = {
        "form-TOTAL_FORMS": "2",
        "form-INITIAL_FORMS": "2",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
    }
    for index, day in enumerate((TODAY + timedelta(days=20), TODAY + timedelta(days=40))):
        data.update(
            {
                f"form-{index}-number": index + 1,
                f"form-{index}-day": day.isoformat(),
                f"form-{index}-start": "10:00",
                f"form-{index}-minutes": "45",
                f"form-{index}-practitioner": practitioner.pk,
                f"form-{index}-room": room.pk,
            }
        )
    response = reception_client.post(url, data)
    assert response.status_code == 200
    assert "already has a session" in response.content.decode()
    assert not Session.objects.filter(course=course).exists()


@pytest.mark.parametrize(
    "query", ["", "?status__exact=scheduled", "?practitioner__id__exact={practitioner}"]
)
def test_sessions_changelist_queries_do_not_grow(
    reception_client, course, practitioner, room, desk, django_assert_max_num_queries, query
):
    url = reverse("admin:treatments_session_changelist") + query.format(
        practitioner=practitioner.pk
    )
    services.session_book(
        course=course,
        number=1,
        start=at(TODAY, 9),
        end=at(TODAY, 10),
        practitioner=practitioner,
        room=room,
        actor=desk,
    )
    reception_client.get(url)
    with django_assert_max_num_queries(14) as few:
        assert reception_client.get(url).status_code == 200
    for hour in range(10, 16):
        services.session_book(
            course=course,
            number=hour,
            start=at(TODAY, hour),
            end=at(TODAY, hour, 30),
            practitioner=practitioner,
            room=room,
            actor=desk,
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert reception_client.get(url).status_code == 200


def test_reception_moves_and_cancels_a_session_in_the_admin(reception_client, today_session):
    url = reverse("admin:treatments_session_change", args=[today_session.pk])
    later = today_session.scheduled_start + timedelta(hours=3)
    response = reception_client.post(
        url,
        session_form(
            later,
            later + timedelta(minutes=45),
            practitioner=today_session.practitioner_id,
            room=today_session.room_id,
        ),
    )
    assert response.status_code == 302
    today_session.refresh_from_db()
    assert today_session.scheduled_start == later
    cancel = reverse("admin:treatments_session_cancel", args=[today_session.pk])
    assert (
        reception_client.post(cancel, {"reason": "patient ill", "by": "patient"}).status_code == 302
    )
    today_session.refresh_from_db()
    assert today_session.status == SessionStatus.CANCELLED_BY_PATIENT


def test_session_and_course_pages_queries_do_not_grow(
    client_of, today_session, practitioner, course, room, desk, ha, django_assert_max_num_queries
):
    session_url = reverse("treatments:session", args=[today_session.pk])
    course_url = reverse("treatments:course", args=[course.pk])
    for url in (session_url, course_url):
        client_of.get(url)
    with django_assert_max_num_queries(30) as session_few:
        client_of.get(session_url)
    with django_assert_max_num_queries(20) as course_few:
        client_of.get(course_url)
    services.session_complete(
        session=today_session,
        record={"technique": "nappage"},
        lines=[ProductLine(product=ha, quantity=Decimal(4))],
        acknowledged=[],
        actor=practitioner,
    )
    for n in range(2, 5):
        services.session_book(
            course=course,
            number=n,
            start=at(TODAY + timedelta(days=14 * n), 10),
            end=at(TODAY + timedelta(days=14 * n), 11),
            practitioner=practitioner,
            room=room,
            actor=desk,
        )
    for product in (ProductFactory(category="consumable") for _ in range(4)):
        receive(product, quantity="10")
    with django_assert_max_num_queries(len(session_few.captured_queries)):
        client_of.get(session_url)
    with django_assert_max_num_queries(len(course_few.captured_queries)):
        client_of.get(course_url)


def test_moving_a_session_outside_the_window_warns(
    reception_client, course, practitioner, room, desk
):
    first = services.session_book(
        course=course,
        number=1,
        start=at(TODAY, 10),
        end=at(TODAY, 11),
        practitioner=practitioner,
        room=room,
        actor=desk,
    )
    second_day = TODAY + timedelta(days=14)
    second = services.session_book(
        course=course,
        number=2,
        start=at(second_day, 10),
        end=at(second_day, 11),
        practitioner=practitioner,
        room=room,
        actor=desk,
    )
    moved_to = timezone.localtime(at(TODAY + timedelta(days=3), 10))
    response = reception_client.post(
        reverse("admin:treatments_session_change", args=[second.pk]),
        session_form(
            moved_to, moved_to + timedelta(hours=1), practitioner=practitioner.pk, room=room.pk
        ),
        follow=True,
    )
    assert "Session 2 is 3 days after the one before" in response.content.decode()
    assert first.pk != second.pk


def test_my_day_judges_each_patient_for_what_their_course_plans(
    client_of, practitioner, room, desk
):
    """A PRP course without PRP consent is a hard stop on the list, as on the session page."""
    from patients.models import ConsentKind
    from tests.factories import ConsentFactory, ProtocolFactory

    patient = PatientFactory()
    ConsentFactory(patient=patient, kind=ConsentKind.MESOTHERAPY)
    ScreeningFactory(patient=patient, taken_on=TODAY)
    prp = ProtocolFactory(indication="hair_loss", product_categories=["prp"])
    course = services.course_plan(
        patient=patient, protocol=prp, lead_practitioner=practitioner, start_date=TODAY, actor=desk
    )
    services.session_book(
        course=course,
        number=1,
        start=at(TODAY, 12),
        end=at(TODAY, 13),
        practitioner=practitioner,
        room=room,
        actor=desk,
    )
    [(_, safety)] = client_of.get(reverse("treatments:my_day")).context["rows"]
    assert [f.code for f in safety.hard_stops] == ["consent_prp"]


@pytest.mark.parametrize("status", ["checked_in", "no_show"])
def test_saving_a_session_that_can_no_longer_move(reception_client, today_session, desk, status):
    services.session_set_status(session=today_session, status=status, actor=desk)
    url = reverse("admin:treatments_session_change", args=[today_session.pk])
    response = reception_client.post(url, session_form())
    assert response.status_code == 302
    today_session.refresh_from_db()
    assert today_session.status == status


def test_sessions_are_given_only_to_practitioners_in_the_admin(
    reception_client, today_session, reception_user
):
    url = reverse("admin:treatments_session_change", args=[today_session.pk])
    response = reception_client.post(
        url,
        session_form(
            today_session.scheduled_start,
            today_session.scheduled_end,
            practitioner=reception_user.pk,
            room=today_session.room_id,
        ),
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    today_session.refresh_from_db()
    assert today_session.practitioner_id != reception_user.pk


def test_editing_a_course_in_the_admin_saves_its_fields_and_keeps_its_status(
    reception_client, course, practitioner
):
    url = reverse("admin:treatments_course_change", args=[course.pk])
    Course = type(course)
    Course.objects.filter(pk=course.pk).update(status="active")
    response = reception_client.post(
        url,
        {
            "lead_practitioner": practitioner.pk,
            "interval_min_days": "10",
            "interval_max_days": "21",
            "status_reason": "",
            "notes": "prefers mornings",
            "sessions-TOTAL_FORMS": "0",
            "sessions-INITIAL_FORMS": "0",
            "sessions-MIN_NUM_FORMS": "0",
            "sessions-MAX_NUM_FORMS": "0",
        },
    )
    assert response.status_code == 302
    course.refresh_from_db()
    assert (course.status, course.interval_min_days, course.notes) == (
        "active",
        10,
        "prefers mornings",
    )


def test_a_product_added_after_a_session_page_was_shown_is_offered_on_the_next(
    client_of, today_session
):
    from tests.factories import ProductFactory

    url = reverse("treatments:session", args=[today_session.pk])
    client_of.get(url)
    added = ProductFactory(name="Vitamin C 20% (new)")

    page = client_of.get(url).content.decode()

    assert added.name in page
