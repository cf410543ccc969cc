from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from inventory.reports import ledger_discrepancies, month_discrepancies


class Command(BaseCommand):
    help = (
        "Checks that every lot's quantity on hand equals the sum of its movements, and that the "
        "daily rollup agrees. Lists each lot that does not and exits with status 1."
    )

    def handle(self, *args, **options):
        found = ledger_discrepancies()
        months = month_discrepancies()
        for product in months:
            self.stderr.write(
                f"product #{product.product_id} {product.product}: sum of movements "
                f"{_plain(product.ledger)}, monthly rollup {_plain(product.rollup)}"
            )
        if months and not found:
            raise CommandError(
                f"{len(months)} product(s) differ from the monthly rollup.", returncode=1
            )
        if not found:
            self.stdout.write(self.style.SUCCESS("Every lot agrees with its ledger."))
            return
        for lot in found:
            self.stderr.write(
                f"lot #{lot.lot_id} {lot.lot}: on hand {_plain(lot.on_hand)}, "
                f"sum of movements {_plain(lot.ledger)}, daily rollup {_plain(lot.rollup)}"
            )
        raise CommandError(f"{len(found)} lot(s) differ from the ledger.", returncode=1)


def _plain(number) -> str:
    return f"{Decimal(number).normalize():f}"
