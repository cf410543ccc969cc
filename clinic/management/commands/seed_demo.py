import argparse

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from clinic import scale
from clinic.accounts import user_set_roles
from clinic.roles import MANAGER, PRACTITIONER, RECEPTION
from inventory.demo import seed_stock
from patients.demo import seed_patients
from treatments.demo import seed_treatments

DEMO_PASSWORD = "demo-clinic-2026"
DEMO_ACCOUNTS = [
    ("reception", "Rocío", "Vidal", RECEPTION),
    ("dra.escoda", "Nuria", "Escoda", PRACTITIONER),
    ("dr.ferrer", "Marc", "Ferrer", PRACTITIONER),
    ("manager", "Teresa", "Soler", MANAGER),
]


class Command(BaseCommand):
    help = (
        "Loads the demo clinic: staff accounts, about 50 patients, and a stock room with its "
        "history. Safe to run twice. With --scale medium or large (PostgreSQL only) it then adds "
        "a chain of clinics over ten years by bulk SQL: 100,000 or 1,000,000 patients, three "
        "sessions each, six stock movements each, with their history. The scale fill only adds "
        f"to an empty or demo-only database: it refuses one with more than "
        f"{scale.MAX_PATIENTS_BEFORE:,} patients."
    )

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=50, help="How many demo patients.")
        parser.add_argument(
            "--scale",
            choices=["demo", *scale.SCALES],
            default="demo",
            help="demo: the demo clinic only (the default); medium: 100,000 more patients; "
            "large: 1,000,000 more patients (about 10 minutes on two cores; docs/benchmarks.md).",
        )
        # Any number of patients for the scale fill, for tests.
        parser.add_argument("--scale-patients", type=int, help=argparse.SUPPRESS)

    def handle(self, *args, **options):
        if options["scale"] != "demo" or options["scale_patients"]:
            self._fill_at_scale(options)
            return
        # Written in one transaction, reported after it commits: a closed output stream cannot
        # undo the load.
        added, lots, sessions = self._load(options["patients"])
        self.stdout.write(
            f"Demo clinic ready: {added} patients, {lots} lots and {sessions} sessions added."
        )
        self.stdout.write(f"Demo accounts (password for all: {DEMO_PASSWORD}):")
        for username, first, last, role in DEMO_ACCOUNTS:
            self.stdout.write(f"  {username:<12} {role:<13} {first} {last}")

    def _fill_at_scale(self, options) -> None:
        patients = options["scale_patients"] or scale.SCALES[options["scale"]]
        scale.check_database()
        self._load(options["patients"])
        reception = get_user_model().objects.get(username=DEMO_ACCOUNTS[0][0])
        counts = scale.fill(patients=patients, reception_id=reception.pk, say=self.stdout.write)
        for name, count in counts.items():
            self.stdout.write(f"  {name:<24} {count:>12,}")

    @transaction.atomic
    def _load(self, patients: int) -> tuple[int, int, int]:
        User = get_user_model()
        users, practitioners = {}, []
        for username, first, last, role in DEMO_ACCOUNTS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@clinic.example",
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            users[role] = user_set_roles(user=user, roles=[role])
            if role == PRACTITIONER:
                practitioners.append(user)
        added = seed_patients(actor=users[RECEPTION], count=patients)
        lots = seed_stock(actor=users[MANAGER], consumers=practitioners)
        sessions = seed_treatments(reception=users[RECEPTION], practitioners=practitioners)
        return added, lots, sessions
