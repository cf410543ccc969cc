from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from clinic.accounts import system_user
from inventory.imports import DeliveryImportError, decode_upload, delivery_import


class Command(BaseCommand):
    help = (
        "Receives a delivery note from a CSV file (columns: product as GTIN or name, "
        "lot_number, expiry_date, quantity, unit_cost, supplier, reference). All lines or none."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--user", help="Username to record as receiving (default: system).")

    def handle(self, *args, file: Path, user: str | None, **options):
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        actor = system_user()
        if user:
            actor = get_user_model().objects.filter(username=user).first()
            if actor is None:
                raise CommandError(f"No user named {user}")
        try:
            result = delivery_import(text=decode_upload(file.read_bytes()), actor=actor)
        except DeliveryImportError as error:
            for problem in error.problems:
                self.stderr.write(problem)
            raise CommandError(
                f"Nothing was received: {len(error.problems)} problem(s) in {file}."
            ) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Received {len(result.movements)} line(s), {result.units.normalize():f} units."
            )
        )
