from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError

from clinic.accounts import user_set_roles
from clinic.roles import PRACTITIONER
from tests.concurrency import run_at_once
from tests.factories import ProtocolFactory, RoomFactory, UserFactory
from tests.treatments.conftest import at
from treatments import services
from treatments.exceptions import DoubleBooking
from treatments.models import CourseStatus, Session, SessionStatus

pytestmark = pytest.mark.django_db
DAY = date(2027, 3, 1)  # a Monday


def test_dates_are_proposed_inside_the_window():
    assert services.propose_dates(
        start_date=DAY, sessions=4, interval_min_days=14, interval_max_days=21
    ) == [DAY, date(2027, 3, 18), date(2027, 4, 4) + timedelta(days=1), date(2027, 4, 22)]


def test_a_date_outside_the_window_is_allowed_with_a_warning(course):
    days = [DAY, DAY + timedelta(days=10), DAY + timedelta(days=27)]
    [warning] = services.window_warnings(course, days)
    assert "Session 2 is 10 days after the one before; the course asks for 14 to 21" in warning


def test_a_course_copies_the_protocols_numbers(patient, practitioner, desk):
    protocol = ProtocolFactory(sessions=5, interval_min_days=7, interval_max_days=10)
    course = services.course_plan(
        patient=patient,
        protocol=protocol,
        lead_practitioner=practitioner,
        start_date=DAY,
        actor=desk,
    )
    protocol.sessions = 3
    protocol.save()
    course.refresh_from_db()
    assert (course.planned_sessions, course.interval_min_days, course.status) == (
        5,
        7,
        CourseStatus.PLANNED,
    )
    assert course.history.get().history_user == desk


def test_booking_refuses_a_practitioner_or_room_already_taken(course, practitioner, room, desk):
    services.session_book(
        course=course,
        number=1,
        start=at(DAY, 10),
        end=at(DAY, 11),
        practitioner=practitioner,
        room=room,
        actor=desk,
    )
    with pytest.raises(DoubleBooking, match="already has a session"):
        services.session_book(
            course=course,
            number=2,
            start=at(DAY, 10, 30),
            end=at(DAY, 11, 30),
            practitioner=practitioner,
            room=RoomFactory(),
            actor=desk,
        )
    with pytest.raises(DoubleBooking, match="Cabina 1 is already booked"):
        services.session_book(
            course=course,
            number=2,
            start=at(DAY, 10, 30),
            end=at(DAY, 11, 30),
            practitioner=user_set_roles(user=UserFactory(), roles=[PRACTITIONER]),
            room=room,
            actor=desk,
        )
    back_to_back = services.session_book(
        course=course,
        number=2,
        start=at(DAY, 11),
        end=at(DAY, 11, 45),
        practitioner=practitioner,
        room=room,
        actor=desk,
    )
    assert back_to_back.pk
    assert Session.objects.count() == 2


def test_a_cancelled_session_frees_its_time(today_session, course, practitioner, room, desk):
    services.session_cancel(session=today_session, by_patient=True, reason="flu", actor=desk)
    again = services.session_book(
        course=course,
        number=1,
        start=today_session.scheduled_start,
        end=today_session.scheduled_end,
        practitioner=practitioner,
        room=room,
        actor=desk,
    )
    assert again.status == SessionStatus.SCHEDULED


def test_a_session_must_end_after_it_starts(course, practitioner, room, desk):
    with pytest.raises(ValidationError, match="end after it starts"):
        services.session_book(
            course=course,
            number=1,
            start=at(DAY, 10),
            end=at(DAY, 10),
            practitioner=practitioner,
            room=room,
            actor=desk,
        )


def test_moving_a_session_checks_the_new_time_and_keeps_history(
    today_session, course, practitioner, room, desk
):
    other = services.session_book(
        course=course,
        number=2,
        start=at(DAY, 9),
        end=at(DAY, 10),
        practitioner=practitioner,
        room=room,
        actor=desk,
    )
    with pytest.raises(DoubleBooking):
        services.session_move(
            session=today_session, start=at(DAY, 9, 30), end=at(DAY, 10, 15), actor=desk
        )
    moved = services.session_move(
        session=today_session,
        start=at(DAY, 12),
        end=at(DAY, 13),
        actor=desk,
        reason="patient asked",
    )
    assert moved.scheduled_start == at(DAY, 12)
    assert moved.history.first().history_change_reason == "patient asked"
    assert other.pk != moved.pk


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (["confirmed", "checked_in"], True),
        (["no_show"], True),
        (["cancelled_clinic", "confirmed"], False),
        (["no_show", "checked_in"], False),
        (["confirmed", "scheduled"], False),
    ],
)
def test_only_allowed_status_transitions(today_session, desk, path, allowed):
    def walk():
        for status in path:
            services.session_set_status(
                session=today_session, status=status, actor=desk, reason="r"
            )

    if allowed:
        walk()
        today_session.refresh_from_db()
        assert today_session.status == path[-1]
    else:
        with pytest.raises(ValidationError, match="cannot become"):
            walk()


def test_completing_is_not_a_status_change(today_session, desk):
    with pytest.raises(ValidationError, match="logging and signing"):
        services.session_set_status(session=today_session, status="completed", actor=desk)


def test_cancelling_needs_a_reason(today_session, desk):
    with pytest.raises(ValidationError, match="Say why"):
        services.session_cancel(session=today_session, by_patient=False, reason=" ", actor=desk)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_desks_booking_the_same_practitioner_at_once_book_one(course, practitioner, desk):
    rooms = [RoomFactory(name=f"Room {n}") for n in range(2)]
    results = run_at_once(
        *[
            lambda n=n: services.session_book(
                course=course,
                number=n + 1,
                start=at(DAY, 10),
                end=at(DAY, 11),
                practitioner=practitioner,
                room=rooms[n],
                actor=desk,
            )
            for n in range(2)
        ]
    )
    outcomes = ["refused" if isinstance(r, DoubleBooking) else type(r).__name__ for r in results]
    assert sorted(outcomes) == ["Session", "refused"]
    assert Session.objects.count() == 1


@pytest.mark.postgres
def test_the_database_itself_refuses_an_overlapping_session(today_session):
    from django.db import IntegrityError, transaction

    clash = Session(
        course=today_session.course,
        number=2,
        scheduled_start=today_session.scheduled_start + timedelta(minutes=10),
        scheduled_end=today_session.scheduled_end + timedelta(minutes=10),
        practitioner=today_session.practitioner,
        room=RoomFactory(),
    )
    with pytest.raises(IntegrityError, match="not_double_booked"), transaction.atomic():
        clash.save()


def test_booking_into_a_cancelled_course_is_refused(course, practitioner, room, desk):
    course.status = CourseStatus.CANCELLED
    course.save()
    with pytest.raises(ValidationError, match="book in a new course"):
        services.session_book(
            course=course,
            number=1,
            start=at(DAY, 10),
            end=at(DAY, 11),
            practitioner=practitioner,
            room=room,
            actor=desk,
        )


def test_only_practitioners_are_booked(course, room, desk):
    with pytest.raises(ValidationError, match="is not a practitioner"):
        services.session_book(
            course=course,
            number=1,
            start=at(DAY, 10),
            end=at(DAY, 11),
            practitioner=desk,
            room=room,
            actor=desk,
        )


def test_moving_without_changing_the_time_keeps_the_confirmation(today_session, desk, room):
    services.session_set_status(session=today_session, status="confirmed", actor=desk)
    moved = services.session_move(
        session=today_session,
        start=today_session.scheduled_start,
        end=today_session.scheduled_end,
        room=RoomFactory(),
        actor=desk,
    )
    assert moved.status == SessionStatus.CONFIRMED


def test_closing_a_course_cancels_its_open_sessions(course, today_session, desk):
    closed = services.course_close(
        course=course, actor=desk, cancelled=True, reason="Patient moved abroad"
    )
    today_session.refresh_from_db()
    assert (closed.status, closed.status_reason) == (CourseStatus.CANCELLED, "Patient moved abroad")
    assert today_session.status == SessionStatus.CANCELLED_BY_CLINIC
    assert closed.history.first().history_change_reason == "Patient moved abroad"
    with pytest.raises(ValidationError, match="already cancelled"):
        services.course_close(course=course, actor=desk, cancelled=False, reason="done")
