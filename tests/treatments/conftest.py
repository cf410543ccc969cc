from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from clinic.accounts import user_set_roles
from clinic.roles import PRACTITIONER
from patients.models import ConsentKind
from tests.factories import (
    ConsentFactory,
    PatientFactory,
    ProductFactory,
    ProtocolFactory,
    RoomFactory,
    ScreeningFactory,
    UserFactory,
    receive,
)
from treatments import services


def at(day, hour, minute=0):
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


@pytest.fixture
def practitioner(db):
    return user_set_roles(
        user=UserFactory(username="dra.escoda", first_name="Nuria", last_name="Escoda"),
        roles=[PRACTITIONER],
    )


@pytest.fixture
def desk(db):
    return UserFactory(username="desk")


@pytest.fixture
def room(db):
    return RoomFactory(name="Cabina 1")


@pytest.fixture
def patient(db):
    """Consented for mesotherapy and PRP, screened today with nothing to report."""
    patient = PatientFactory()
    ConsentFactory(patient=patient, kind=ConsentKind.MESOTHERAPY)
    ConsentFactory(patient=patient, kind=ConsentKind.PRP)
    ScreeningFactory(patient=patient, taken_on=timezone.localdate())
    return patient


@pytest.fixture
def course(patient, practitioner, desk):
    return services.course_plan(
        patient=patient,
        protocol=ProtocolFactory(),
        lead_practitioner=practitioner,
        start_date=timezone.localdate(),
        actor=desk,
    )


@pytest.fixture
def today_session(course, practitioner, room, desk):
    today = timezone.localdate()
    return services.session_book(
        course=course,
        number=1,
        start=at(today, 10),
        end=at(today, 10, 45),
        practitioner=practitioner,
        room=room,
        actor=desk,
    )


@pytest.fixture
def ha(db):
    """HA in two lots: EARLY (3 units, expires in 30 days) and LATE (5 units, in 300)."""
    today = timezone.localdate()
    product = ProductFactory(name="HA 1%", category="hyaluronic_acid")
    receive(product, lot_number="EARLY", quantity="3", expiry=today + timedelta(days=30))
    receive(product, lot_number="LATE", quantity="5", expiry=today + timedelta(days=300))
    return product
