"""Importing a supplier's delivery note from CSV. Every row is checked, and every problem is
reported with its row number; one bad row means nothing is received. A line whose reference
(the delivery note's number) was already received into its lot is refused: the same file
imported twice would double the stock."""

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Min
from django.utils import timezone
from django.utils.translation import gettext as _

from clinic.locks import advisory_lock

from . import services
from .models import (
    Lot,
    MovementKind,
    Product,
    StockMovement,
    Supplier,
    lot_number_printed,
    normalise_gtin,
)

COLUMNS = ["product", "lot_number", "expiry_date", "quantity", "unit_cost", "supplier", "reference"]
REQUIRED = COLUMNS[:5]
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y")
MAX_ROWS = 2000


class DeliveryImportError(ValidationError):
    """Carries every problem found, each a line "row N: …"."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(problems)


@dataclass
class DeliveryImport:
    movements: list[StockMovement]

    @property
    def units(self) -> Decimal:
        return sum((m.quantity for m in self.movements), Decimal(0))


@dataclass(frozen=True)
class DeliveryLine:
    product: Product
    lot_number: str
    expiry_date: date
    quantity: Decimal
    unit_cost: Decimal
    supplier: Supplier | None = None
    reference: str = ""


def _decimal(text: str) -> Decimal:
    text = text.strip().replace(" ", "")
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    return Decimal(text)


def _date(text: str) -> date:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    raise ValueError(text)


def _read(text: str) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """The file's rows as (row number as a spreadsheet shows it, values by column); blank rows
    are left out but still counted."""
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    records = list(csv.reader(io.StringIO(text), dialect=dialect))
    header = [name.strip().lower() for name in (records[0] if records else [])]
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        return [], [
            _("The file has no column %(columns)s. Expected columns: %(expected)s.")
            % {"columns": ", ".join(missing), "expected": ", ".join(COLUMNS)}
        ]
    rows = [
        (number, {name: value.strip() for name, value in zip(header, record, strict=False) if name})
        for number, record in enumerate(records[1:], start=2)
    ]
    rows = [(number, row) for number, row in rows if any(row.values())]
    if not rows:
        return [], [_("The file has no delivery lines.")]
    if len(rows) > MAX_ROWS:
        return [], [_("The file has more than %(max)d lines; split it.") % {"max": MAX_ROWS}]
    return rows, []


def delivery_lines_parse(
    text: str,
) -> tuple[list[tuple[int, DeliveryLine]], list[tuple[int, str]]]:
    """Turns the file into delivery lines, numbered as a spreadsheet shows them (the header
    is row 1), and the problems of the rows that are not (row number, text). Raises
    DeliveryImportError if the file as a whole cannot be read (a column missing, no rows)."""
    rows, problems = _read(text)
    if problems:
        raise DeliveryImportError(problems)
    products = {p.gtin: p for p in Product.objects.exclude(gtin="")}
    by_name = {p.name.lower(): p for p in Product.objects.all()}
    suppliers = {s.name.lower(): s for s in Supplier.objects.all()}
    lines, seen = [], {}
    for number, row in rows:
        errors = []
        wanted = row.get("product", "")
        product = products.get(normalise_gtin(wanted)) or by_name.get(wanted.lower())
        if product is None:
            errors.append(_("no product with GTIN or name “%(product)s”") % {"product": wanted})
        elif not product.active:
            errors.append(_("%(product)s is no longer active") % {"product": product})
        lot_number = row.get("lot_number", "")
        if not lot_number:
            errors.append(_("the lot number is empty"))
        elif len(lot_number) > 20:
            errors.append(_("the lot number is longer than 20 characters"))
        try:
            expiry = _date(row.get("expiry_date", ""))
        except ValueError:
            expiry = None
            errors.append(
                _("the expiry date “%(value)s” is not a date (use 2027-03-31 or 31/03/2027)")
                % {"value": row.get("expiry_date", "")}
            )
        try:
            quantity = _decimal(row.get("quantity", ""))
            if not quantity.is_finite() or quantity <= 0:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            quantity = None
            errors.append(
                _("the quantity “%(value)s” is not a number above zero")
                % {"value": row.get("quantity", "")}
            )
        try:
            cost = _decimal(row.get("unit_cost", ""))
            if not cost.is_finite() or cost < 0:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            cost = None
            errors.append(
                _("the unit cost “%(value)s” is not a number of 0 or more")
                % {"value": row.get("unit_cost", "")}
            )
        supplier = None
        if row.get("supplier"):
            supplier = suppliers.get(row["supplier"].lower())
            if supplier is None:
                errors.append(_("no supplier named “%(supplier)s”") % {"supplier": row["supplier"]})
        if product and lot_number and expiry:
            # One lot, whatever its capitals or spaces.
            row_before, written, expiry_before = seen.setdefault(
                (product.pk, lot_number_printed(lot_number)), (number, lot_number, expiry)
            )
            if written != lot_number:
                errors.append(
                    _("lot %(lot)s is written %(written)s on row %(row)d")
                    % {"lot": lot_number, "written": written, "row": row_before}
                )
            elif expiry_before != expiry:
                errors.append(
                    _("lot %(lot)s has expiry %(expiry)s on row %(row)d")
                    % {
                        "lot": lot_number,
                        "expiry": expiry_before.strftime("%d/%m/%Y"),
                        "row": row_before,
                    }
                )
        if errors:
            problems.append(_problem(number, errors))
            continue
        lines.append(
            (
                number,
                DeliveryLine(
                    product=product,
                    lot_number=lot_number,
                    expiry_date=expiry,
                    quantity=quantity,
                    unit_cost=cost,
                    supplier=supplier,
                    reference=row.get("reference", ""),
                ),
            )
        )
    return lines, problems


@transaction.atomic
def delivery_import(*, text: str, actor: AbstractBaseUser) -> DeliveryImport:
    """Receives every line of the file, or none. The lines the file gives well are received
    even when others are not, inside this transaction, so that the problems the stock rules
    find (an expiry already past, a lot on file with another expiry, a recalled lot) are
    listed with those of the file itself, every row's in one go; then, if there is any, all
    is rolled back."""
    lines, problems = delivery_lines_parse(text)
    # The lots already on file are locked first, all together in the app's lock order.
    services.stock_lock(
        lots=Lot.objects.filter(
            product__in={line.product for _, line in lines},
            lot_number__in={line.lot_number for _, line in lines},
        )
    )
    # A delivery note already received (the same file imported again), read before this
    # file's own receipts are written.
    received = _received_before(lines)
    movements = []
    for number, line in lines:
        earlier = received.get((line.product.pk, line.lot_number, line.reference))
        if earlier is not None:
            problems.append(
                _problem(
                    number,
                    [
                        _(
                            "delivery note %(reference)s was already received into lot %(lot)s "
                            "on %(day)s"
                        )
                        % {
                            "reference": line.reference,
                            "lot": line.lot_number,
                            "day": timezone.localtime(earlier).strftime("%d/%m/%Y"),
                        }
                    ],
                )
            )
            continue
        try:
            movements.append(
                services.lot_receive(
                    product=line.product,
                    lot_number=line.lot_number,
                    expiry_date=line.expiry_date,
                    quantity=line.quantity,
                    unit_cost=line.unit_cost,
                    supplier=line.supplier,
                    reference=line.reference,
                    actor=actor,
                )
            )
        except ValidationError as error:
            problems.append(_problem(number, error.messages))
    if problems:
        raise DeliveryImportError([text for _number, text in sorted(problems)])
    return DeliveryImport(movements=movements)


def _received_before(lines: list[tuple[int, DeliveryLine]]) -> dict[tuple, datetime]:
    """When each (product, lot number, reference) of the file's referenced lines was first
    received, for those already on file. One query, after a lock on each reference (in their
    order): two imports of one delivery note at once take turns, and the second sees the
    first's receipts."""
    references = sorted({line.reference for _, line in lines if line.reference})
    if not references:
        return {}
    for reference in references:
        advisory_lock(f"delivery note:{reference}")
    receipts = (
        StockMovement.objects.filter(
            kind=MovementKind.RECEIPT,
            reference__in=references,
            lot__product__in={line.product for _, line in lines},
            lot__lot_number__in={line.lot_number for _, line in lines},
        )
        .values_list("lot__product_id", "lot__lot_number", "reference")
        .annotate(first=Min("occurred_at"))
        .order_by()
    )
    return {(product, lot, reference): first for product, lot, reference, first in receipts}


def _problem(number: int, errors: list[str]) -> tuple[int, str]:
    return number, _("row %(row)d: %(errors)s") % {"row": number, "errors": "; ".join(errors)}


def decode_upload(data: bytes) -> str:
    """CSV files come from spreadsheets in UTF-8 (with or without BOM) or Windows-1252."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252")
