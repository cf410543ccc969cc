"""Believable demo patients for `seed_demo`, written through the services."""

import random
from datetime import date, datetime, time, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from . import services
from .models import Consent, ConsentKind, Fitzpatrick, Glogau, Patient, ReminderChannel, Screening

GIVEN_FEMALE = [
    "Lucía",
    "María",
    "Carmen",
    "Elena",
    "Laura",
    "Marta",
    "Paula",
    "Sara",
    "Ana",
    "Cristina",
    "Isabel",
    "Nuria",
    "Alba",
    "Beatriz",
    "Raquel",
    "Silvia",
    "Irene",
]
GIVEN_MALE = [
    "Javier",
    "Carlos",
    "David",
    "Sergio",
    "Pablo",
    "Jorge",
    "Daniel",
    "Alberto",
    "Manuel",
    "Andrés",
]
FAMILY = [
    "García",
    "Martínez",
    "López",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Martín",
    "Jiménez",
    "Ruiz",
    "Hernández",
    "Díaz",
    "Moreno",
    "Muñoz",
    "Álvarez",
    "Romero",
    "Navarro",
    "Torres",
    "Domínguez",
    "Vázquez",
    "Ramos",
    "Gil",
    "Serrano",
    "Blanco",
    "Molina",
]
CITIES = [("Barcelona", "080"), ("Madrid", "280"), ("Valencia", "460"), ("Sevilla", "410")]
STREETS = ["Calle Mayor", "Avenida Diagonal", "Calle de Alcalá", "Gran Vía", "Calle Colón"]
ALLERGIES = ["penicillin", "latex", "nickel", "pollen"]


def _aware(day: date, hour: int) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, 0)))


def seed_patients(*, actor: AbstractBaseUser, count: int, seed: int = 2026) -> int:
    """Registers up to `count` patients with screenings and consents; returns how many were new.
    The same seed gives the same people, and a person already on file is skipped, so running it
    twice adds nothing."""
    rng = random.Random(seed)
    today = timezone.localdate()
    created = 0
    for index in range(count):
        # Everything is drawn before the skip, so every run consumes the generator alike.
        female = rng.random() < 0.8
        given = rng.choice(GIVEN_FEMALE if female else GIVEN_MALE)
        family = f"{rng.choice(FAMILY)} {rng.choice(FAMILY)}"
        born = today - timedelta(days=rng.randint(22 * 365, 68 * 365))
        city, postcode = rng.choice(CITIES)
        channel = ReminderChannel.SMS if rng.random() < 0.4 else ReminderChannel.EMAIL
        registered_days_ago = rng.randint(5, 400)
        screening_age = rng.choice([2, 10, 20, 25, 45, 90]) if index % 10 else None
        flags = {
            name: rng.random() < chance
            for name, chance in [
                ("anticoagulants", 0.05),
                ("autoimmune_disease", 0.04),
                ("keloid_tendency", 0.04),
                ("diabetes", 0.06),
                ("pregnant_or_breastfeeding", 0.03),
                ("anaemia", 0.04),
                ("allergy_anaesthetic", 0.03),
            ]
        }
        other_allergy = rng.choice(ALLERGIES) if rng.random() < 0.1 else ""
        consent_plan = rng.random()
        ascii_name = (given + "." + family.split()[0]).lower()
        for accented, plain in zip("áéíóúñü", "aeiounu", strict=True):
            ascii_name = ascii_name.replace(accented, plain)
        patient = Patient(
            given_name=given,
            family_name=family,
            date_of_birth=born,
            sex="female" if female else "male",
            email=f"{ascii_name}{index}@example.com",
            mobile_phone=f"+346{rng.randint(10000000, 99999999)}",
            preferred_channel=channel,
            reminders_opt_out=index % 17 == 0,
            preferred_language="es" if rng.random() < 0.85 else "en",
            address_line=f"{rng.choice(STREETS)} {rng.randint(1, 200)}",
            postal_code=f"{postcode}{rng.randint(10, 99)}",
            city=city,
            fitzpatrick_type=rng.choice(Fitzpatrick.values),
            glogau_type=rng.choice(Glogau.values),
        )
        if Patient.objects.likely_duplicates_of(
            given_name=given, family_name=family, date_of_birth=born
        ).exists():
            continue
        services.patient_register(patient=patient, actor=actor)
        created += 1
        signed = _aware(today - timedelta(days=registered_days_ago), 10)
        if screening_age is not None:
            services.screening_record(
                screening=Screening(
                    patient=patient,
                    taken_on=today - timedelta(days=screening_age),
                    allergies=other_allergy,
                    **flags,
                ),
                actor=actor,
            )
        if consent_plan < 0.9:
            services.consent_record(
                consent=Consent(
                    patient=patient,
                    kind=ConsentKind.MESOTHERAPY,
                    form_version="2025-01",
                    signed_at=signed,
                ),
                actor=actor,
            )
        if consent_plan < 0.35:
            services.consent_record(
                consent=Consent(
                    patient=patient, kind=ConsentKind.PRP, form_version="2025-01", signed_at=signed
                ),
                actor=actor,
            )
        if consent_plan < 0.6:
            photos = services.consent_record(
                consent=Consent(
                    patient=patient,
                    kind=ConsentKind.PHOTOGRAPHY,
                    form_version="2024-06",
                    signed_at=signed,
                ),
                actor=actor,
            )
            if index % 9 == 0:
                services.consent_withdraw(
                    consent=photos, actor=actor, reason="Patient no longer wants photographs taken."
                )
    return created
