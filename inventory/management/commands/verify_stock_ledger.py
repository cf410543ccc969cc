from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from inventory.reports import (
    RollupDiscrepancy,
    ledger_discrepancies,
    month_discrepancies,
    rollup_discrepancies,
)


class Command(BaseCommand):
    help = (
        "Checks that every lot's quantity on hand equals the sum of its movements, and that the "
        "daily and monthly rollups agree with the ledger, row by row (quantity, value and count "
        "of movements per day or month, kind, user and waste reason). Lists what does not and "
        "exits with status 1."
    )

    def handle(self, *args, **options):
        lots, months, rows = ledger_discrepancies(), month_discrepancies(), rollup_discrepancies()
        for lot in lots:
            self.stderr.write(
                f"lot #{lot.lot_id} {lot.lot}: on hand {_plain(lot.on_hand)}, "
                f"sum of movements {_plain(lot.ledger)}, daily rollup {_plain(lot.rollup)}"
            )
        for product in months:
            self.stderr.write(
                f"product #{product.product_id} {product.product}: sum of movements "
                f"{_plain(product.ledger)}, monthly rollup {_plain(product.rollup)}"
            )
        for row in rows:
            self.stderr.write(_describe(row))
        problems = [
            f"{count} {what}"
            for count, what in (
                (len(lots), "lot(s) differ from the ledger"),
                (len(months), "product(s) differ from the monthly rollup"),
                (len(rows), "rollup row(s) differ from what they sum up"),
            )
            if count
        ]
        if problems:
            raise CommandError("; ".join(problems) + ".", returncode=1)
        self.stdout.write(self.style.SUCCESS("Every lot agrees with its ledger."))


def _describe(row: RollupDiscrepancy) -> str:
    owner = "lot" if row.rollup == "daily" else "product"
    source = "ledger" if row.rollup == "daily" else "daily rollup"
    reason = f" ({row.waste_reason})" if row.waste_reason else ""
    return (
        f"{row.rollup} rollup, {owner} #{row.owner_id}, {row.period}, {row.kind}{reason} by user "
        f"#{row.actor_id}: {source} {_side(row.source)}, rollup {_side(row.found)}"
    )


def _side(side: tuple | None) -> str:
    if side is None:
        return "no row"
    quantity, value, movements = side
    return f"{_plain(quantity)} worth {_plain(value)} in {movements} movement(s)"


def _plain(number) -> str:
    return f"{Decimal(number).normalize():f}"
