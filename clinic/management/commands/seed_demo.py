from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

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
        "history. Safe to run twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=50, help="How many patients.")

    def handle(self, *args, **options):
        # Written in one transaction, reported after it commits: a closed output stream cannot
        # undo the load.
        added, lots, sessions = self._load(options["patients"])
        self.stdout.write(
            f"Demo clinic ready: {added} patients, {lots} lots and {sessions} sessions added."
        )
        self.stdout.write(f"Demo accounts (password for all: {DEMO_PASSWORD}):")
        for username, first, last, role in DEMO_ACCOUNTS:
            self.stdout.write(f"  {username:<12} {role:<13} {first} {last}")

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
