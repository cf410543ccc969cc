"""Protocols, rooms and courses for `seed_demo`: past sessions completed (their stock taken),
today's and upcoming sessions booked. Written through the services."""

import random
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, Q, Sum
from django.utils import timezone

from clinic.substances import SubstanceCategory as S
from inventory.models import Product
from patients.models import Patient, Screening
from patients.selectors import has_consent_in_force, treatability
from patients.services import screening_record

from . import services
from .models import Course, Protocol, Room

PROTOCOLS = [
    (
        "Facial rejuvenation, 4 sessions",
        "facial_rejuvenation",
        4,
        14,
        21,
        90,
        [S.HYALURONIC_ACID, S.VITAMIN_COCKTAIL, S.ANAESTHETIC],
        ["full_face"],
    ),
    (
        "Deep hydration, 3 sessions",
        "hydration",
        3,
        7,
        14,
        60,
        [S.HYALURONIC_ACID],
        ["full_face", "neck"],
    ),
    (
        "Acne scars, 4 sessions",
        "acne_scars",
        4,
        21,
        28,
        None,
        [S.HYALURONIC_ACID, S.ANAESTHETIC],
        ["cheeks"],
    ),
    ("Hair loss with PRP, 4 sessions", "hair_loss", 4, 21, 35, 120, [S.PRP], ["scalp"]),
    (
        "Body contouring and cellulite, 6 sessions",
        "body_contouring",
        6,
        7,
        10,
        None,
        [S.VITAMIN_COCKTAIL],
        ["abdomen", "flanks", "thighs"],
    ),
    (
        "Neck and décolleté, 4 sessions",
        "neck_decollete",
        4,
        14,
        21,
        90,
        [S.HYALURONIC_ACID, S.VITAMIN_COCKTAIL],
        ["neck", "decollete"],
    ),
    ("Hands, 3 sessions", "hands", 3, 14, 21, None, [S.HYALURONIC_ACID], ["hands"]),
]


def _best_stocked(category: str, today) -> Product | None:
    return (
        Product.objects.filter(category=category)
        .annotate(
            usable=Sum(
                "lots__quantity_on_hand",
                filter=Q(lots__status="available", lots__expiry_date__gte=today),
            )
        )
        .order_by(F("usable").desc(nulls_last=True), "name")
        .first()
    )


def _at(day, hour, minute=0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def seed_treatments(
    *, reception: AbstractBaseUser, practitioners: list[AbstractBaseUser], seed: int = 2026
) -> int:
    """Loads protocols, rooms and courses once; returns how many sessions were booked."""
    if Course.objects.exists() or not practitioners:
        return 0
    rng = random.Random(seed)
    rooms = [Room.objects.get_or_create(name=name)[0] for name in ("Cabina 1", "Cabina 2")]
    protocols = [
        Protocol.objects.get_or_create(
            name=name,
            defaults={
                "indication": indication,
                "sessions": sessions,
                "interval_min_days": low,
                "interval_max_days": high,
                "maintenance_interval_days": maintenance,
                "product_categories": categories,
                "areas": areas,
            },
        )[0]
        for name, indication, sessions, low, high, maintenance, categories, areas in PROTOCOLS
    ]
    today = timezone.localdate()
    ha, cocktail, needle = (
        _best_stocked(category, today)
        for category in (S.HYALURONIC_ACID, S.VITAMIN_COCKTAIL, S.CONSUMABLE)
    )
    candidates = Patient.objects.filter(
        has_consent_in_force(kind="mesotherapy", on=today)
    ).order_by("id")[:14]
    booked = 0
    for index, patient in enumerate(candidates):
        practitioner = practitioners[(index // 2) % len(practitioners)]
        protocol = protocols[index % 3] if index % 7 else protocols[5]
        past = index % 2 == 0  # half the courses started weeks ago
        start = today - timedelta(days=30) if past else today + timedelta(days=index % 3)
        course = services.course_plan(
            patient=patient,
            protocol=protocol,
            lead_practitioner=practitioner,
            start_date=start,
            actor=reception,
        )
        days = services.propose_dates(
            start_date=start,
            sessions=protocol.sessions,
            interval_min_days=protocol.interval_min_days,
            interval_max_days=protocol.interval_max_days,
        )
        if not past:
            days[0] = today if index % 3 == 1 else days[0]
        for number, day in enumerate(days, start=1):
            session = _book_first_free(
                course,
                number,
                day,
                practitioner,
                rooms,
                reception,
                first_hour=9 + (index * 2 + number) % 9,
            )
            if session is None:
                continue
            booked += 1
            if day < today:
                _complete(session, practitioner, day, ha, cocktail, needle, rng)
    return booked


def _book_first_free(course, number, day, practitioner, rooms, actor, *, first_hour):
    """The first half-hour from `first_hour` when the practitioner and a room are free."""
    for step in range(18):
        hour, minute = divmod(first_hour * 60 + 30 * step, 60)
        if hour >= 19:
            hour -= 10
        for room in rooms:
            try:
                return services.session_book(
                    course=course,
                    number=number,
                    start=_at(day, hour, minute),
                    end=_at(day, hour, minute + 29),
                    practitioner=practitioner,
                    room=room,
                    actor=actor,
                )
            except services.DoubleBooking:
                continue
    return None


def _complete(session, practitioner, day, ha, cocktail, needle, rng) -> None:
    """The session as the practitioner logged it: day-of answers, products, signature."""
    patient = session.course.patient
    answers = (
        Screening.objects.filter(patient=patient)
        .order_by("-taken_on")
        .values(*Screening.ANSWER_FIELDS)
        .first()
        or {}
    )
    answers = {
        **answers,
        "pregnant_or_breastfeeding": False,
        "active_infection_at_site": False,
        "nsaids_last_48h": False,
    }
    screening_record(
        screening=Screening(patient=patient, taken_on=day, **answers), actor=practitioner
    )
    lines = [
        services.ProductLine(
            product=product,
            quantity=Decimal(quantity),
            area="full_face",
            volume_ml=Decimal("2.5") if product != needle else None,
        )
        for product, quantity in ((ha, 1), (cocktail, 1), (needle, 2))
        if product
    ]
    categories = [line.product.category for line in lines if line.product.category != "consumable"]
    safety = treatability(patient=patient, categories=categories, on=day)
    if safety.hard_stops:
        return
    try:
        services.session_complete(
            session=session,
            lines=lines,
            actor=practitioner,
            acknowledged=[finding.code for finding in safety.warnings],
            record={
                "areas": ["full_face"],
                "technique": "nappage",
                "needle_gauge": 32,
                "needle_length_mm": Decimal("4"),
                "depth_mm": Decimal("1.5"),
                "aftercare_given": True,
                "photos_taken": rng.random() < 0.5,
                "pain_score": rng.randint(1, 4),
                "erythema": rng.random() < 0.6,
            },
        )
    except services.ValidationError:
        # Not enough stock left in the demo room: the session stays booked, not completed.
        return
