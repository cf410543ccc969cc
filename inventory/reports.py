"""The managers' stock reports. Each is one or two aggregate queries, whatever the size of the
ledger: snapshots read the lots, flows over a period read the daily rollup (StockDay).

Quantities are in each product's stock units; values are at the cost of the lot when stock
moved (flows) or at the lot's current cost (snapshots of today)."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import (
    DecimalField,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDay, TruncMonth, TruncWeek

from clinic.substances import SubstanceCategory

from .models import Lot, LotStatus, MovementKind, Product, StockDay, StockMovement, StockUnit

ZERO = Decimal(0)
MONEY_FIELD = DecimalField(max_digits=20, decimal_places=5)
QUANTITY_FIELD = DecimalField(max_digits=16, decimal_places=3)


@dataclass
class LotLine:
    lot_id: int
    lot_number: str
    expiry_date: date
    status: str
    quantity: Decimal
    unit_cost: Decimal

    @property
    def value(self) -> Decimal:
        return self.quantity * self.unit_cost

    @property
    def status_label(self) -> str:
        return LotStatus(self.status).label


@dataclass
class ProductStock:
    product_id: int
    name: str
    category: str
    stock_unit: str
    reorder_level: Decimal
    on_hand: Decimal
    usable: Decimal
    value: Decimal
    lots: list[LotLine] = field(default_factory=list)

    @property
    def unit_label(self) -> str:
        return StockUnit(self.stock_unit).label

    @property
    def category_label(self) -> str:
        return SubstanceCategory(self.category).label


def _products(category: str | None) -> QuerySet[Product]:
    products = Product.objects.all()
    return products.filter(category=category) if category else products


def on_hand(
    *,
    category: str | None = None,
    today: date,
    product_ids: list[int] | None = None,
    with_lots: bool = True,
) -> list[ProductStock]:
    """Each product with what is on the shelf, what of it is usable today, its value at cost,
    and (`with_lots`) its lots on the shelf, earliest expiry first. Two queries, or one."""
    products = _products(category)
    if product_ids is not None:
        products = products.filter(pk__in=product_ids)
    usable = Q(lots__status=LotStatus.AVAILABLE, lots__expiry_date__gte=today)
    rows = (
        products.annotate(
            on_hand=Coalesce(Sum("lots__quantity_on_hand"), ZERO, output_field=QUANTITY_FIELD),
            usable=Coalesce(
                Sum("lots__quantity_on_hand", filter=usable), ZERO, output_field=QUANTITY_FIELD
            ),
            value=Coalesce(
                Sum(F("lots__quantity_on_hand") * F("lots__unit_cost"), output_field=MONEY_FIELD),
                ZERO,
                output_field=MONEY_FIELD,
            ),
        )
        .order_by("name")
        .values_list(
            "id", "name", "category", "stock_unit", "reorder_level", "on_hand", "usable", "value"
        )
    )
    stock = {row[0]: ProductStock(*row) for row in rows}
    if not with_lots:
        return list(stock.values())
    lots = (
        Lot.objects.on_shelf()
        .filter(product_id__in=list(stock))
        .order_by("product_id", "expiry_date", "id")
        .values_list(
            "product_id",
            "id",
            "lot_number",
            "expiry_date",
            "status",
            "quantity_on_hand",
            "unit_cost",
        )
    )
    for product_id, *line in lots:
        stock[product_id].lots.append(LotLine(*line))
    return list(stock.values())


def low_stock(*, category: str | None = None, today: date) -> list[ProductStock]:
    """Active products whose usable quantity is at or below their reorder level. One query."""
    usable = Q(lots__status=LotStatus.AVAILABLE, lots__expiry_date__gte=today)
    rows = (
        _products(category)
        .filter(active=True)
        .annotate(
            on_hand=Coalesce(Sum("lots__quantity_on_hand"), ZERO, output_field=QUANTITY_FIELD),
            usable=Coalesce(
                Sum("lots__quantity_on_hand", filter=usable), ZERO, output_field=QUANTITY_FIELD
            ),
            value=Value(ZERO, output_field=MONEY_FIELD),
        )
        .filter(usable__lte=F("reorder_level"))
        .order_by("name")
        .values_list(
            "id", "name", "category", "stock_unit", "reorder_level", "on_hand", "usable", "value"
        )
    )
    return [ProductStock(*row) for row in rows]


@dataclass
class ExpiringLot:
    lot_id: int
    product: str
    category: str
    stock_unit: str
    lot_number: str
    expiry_date: date
    status: str
    quantity: Decimal
    unit_cost: Decimal
    days_left: int = 0

    @property
    def value(self) -> Decimal:
        return self.quantity * self.unit_cost

    @property
    def unit_label(self) -> str:
        return StockUnit(self.stock_unit).label

    @property
    def status_label(self) -> str:
        return LotStatus(self.status).label


def expiring(
    *, category: str | None = None, today: date, until: date, since: date | None = None
) -> list[ExpiringLot]:
    """Lots still on the shelf that expire between `since` (default today) and `until`, and
    every lot already expired (negative days left). One query."""
    since = since or today
    lots = Lot.objects.on_shelf().filter(
        Q(expiry_date__gte=since, expiry_date__lte=until) | Q(expiry_date__lt=today)
    )
    if category:
        lots = lots.filter(product__category=category)
    rows = lots.order_by("expiry_date", "product__name", "id").values_list(
        "id",
        "product__name",
        "product__category",
        "product__stock_unit",
        "lot_number",
        "expiry_date",
        "status",
        "quantity_on_hand",
        "unit_cost",
    )
    result = [ExpiringLot(*row) for row in rows]
    for lot in result:
        lot.days_left = (lot.expiry_date - today).days
    return result


GROUPS = {
    "product": ("lot__product_id", "lot__product__name"),
    "category": ("lot__product__category", "lot__product__category"),
    "user": ("actor_id", "actor__username"),
}
PERIODS = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}


@dataclass
class FlowRow:
    period: date | None
    key: object
    label: str
    quantity: Decimal
    value: Decimal


def _flows(
    kinds: list[str], *, date_from: date, date_to: date, category: str | None
) -> QuerySet[StockDay]:
    days = StockDay.objects.filter(kind__in=kinds, day__gte=date_from, day__lte=date_to)
    if category:
        days = days.filter(lot__product__category=category)
    return days


def consumption(
    *,
    date_from: date,
    date_to: date,
    category: str | None = None,
    group: str = "product",
    period: str = "month",
) -> list[FlowRow]:
    """Net consumption (reversals deducted) per period and per product, category or acting
    user, as positive quantities and values. One query over the daily rollup."""
    key, label = GROUPS[group]
    rows = (
        _flows([MovementKind.CONSUMPTION], date_from=date_from, date_to=date_to, category=category)
        .annotate(period=PERIODS[period]("day"))
        .values("period", key, label)
        .annotate(quantity=-Sum("quantity"), value=-Sum("value"))
        .order_by("period", label)
        .values_list("period", key, label, "quantity", "value")
    )
    return [FlowRow(*row) for row in rows]


@dataclass
class WasteReport:
    by_reason: list[tuple[str, Decimal, Decimal]]
    waste_quantity: Decimal
    waste_value: Decimal
    consumption_quantity: Decimal
    consumption_value: Decimal

    @property
    def share_of_consumption(self) -> Decimal | None:
        """Waste value as a fraction of consumption value (quantities mix units)."""
        if not self.consumption_value:
            return None
        return self.waste_value / self.consumption_value


def waste(*, date_from: date, date_to: date, category: str | None = None) -> WasteReport:
    """Waste per reason, and against consumption over the same period. One query."""
    rows = (
        _flows(
            [MovementKind.WASTE, MovementKind.CONSUMPTION],
            date_from=date_from,
            date_to=date_to,
            category=category,
        )
        .values("kind", "waste_reason")
        .annotate(quantity=-Sum("quantity"), value=-Sum("value"))
        .order_by("kind", "waste_reason")
        .values_list("kind", "waste_reason", "quantity", "value")
    )
    by_reason, consumed_quantity, consumed_value = [], ZERO, ZERO
    for kind, reason, quantity, value in rows:
        if kind == MovementKind.CONSUMPTION:
            consumed_quantity, consumed_value = quantity, value
        else:
            by_reason.append((reason, quantity, value))
    return WasteReport(
        by_reason=by_reason,
        waste_quantity=sum((q for _, q, _ in by_reason), ZERO),
        waste_value=sum((v for _, _, v in by_reason), ZERO),
        consumption_quantity=consumed_quantity,
        consumption_value=consumed_value,
    )


@dataclass
class ValuationRow:
    category: str
    lots: int
    quantity: Decimal
    value: Decimal


def valuation(*, as_of: date, today: date, category: str | None = None) -> list[ValuationRow]:
    """Stock value at cost per category: today from the lots, on an earlier day from the
    rollup's flows up to that day. One query."""
    if as_of >= today:
        lots = Lot.objects.on_shelf()
        if category:
            lots = lots.filter(product__category=category)
        rows = (
            lots.values("product__category")
            .annotate(
                count=Sum(Value(1)),
                quantity=Sum("quantity_on_hand"),
                value=Sum(F("quantity_on_hand") * F("unit_cost"), output_field=MONEY_FIELD),
            )
            .order_by("product__category")
            .values_list("product__category", "count", "quantity", "value")
        )
        return [ValuationRow(*row) for row in rows]
    days = StockDay.objects.filter(day__lte=as_of)
    if category:
        days = days.filter(lot__product__category=category)
    per_lot = (
        days.values("lot_id", "lot__product__category")
        .annotate(quantity=Sum("quantity"), value=Sum("value"))
        .filter(quantity__gt=0)
    )
    totals: dict[str, ValuationRow] = {}
    for row in per_lot.order_by():
        total = totals.setdefault(
            row["lot__product__category"],
            ValuationRow(row["lot__product__category"], 0, ZERO, ZERO),
        )
        total.lots += 1
        total.quantity += row["quantity"]
        total.value += row["value"]
    return [totals[key] for key in sorted(totals)]


def lot_ledger(
    *, lot: Lot, date_from: date | None = None, date_to: date | None = None
) -> QuerySet[StockMovement]:
    """The movements of one lot, oldest first, with the balance after each. One query."""
    movements = StockMovement.objects.filter(lot=lot)
    balance = Subquery(
        StockMovement.objects.filter(lot=lot)
        .filter(
            Q(occurred_at__lt=OuterRef("occurred_at"))
            | Q(occurred_at=OuterRef("occurred_at"), id__lte=OuterRef("id"))
        )
        .order_by()
        .values("lot")
        .annotate(total=Sum("quantity"))
        .values("total")[:1],
        output_field=QUANTITY_FIELD,
    )
    if date_from:
        movements = movements.filter(occurred_at__date__gte=date_from)
    if date_to:
        movements = movements.filter(occurred_at__date__lte=date_to)
    return (
        movements.select_related("actor", "reverses")
        .annotate(balance=balance)
        .order_by("occurred_at", "id")
    )


@dataclass
class LedgerDiscrepancy:
    lot_id: int
    lot: str
    on_hand: Decimal
    ledger: Decimal
    rollup: Decimal


def ledger_discrepancies() -> list[LedgerDiscrepancy]:
    """Lots whose quantity on hand differs from the sum of their movements, or whose daily
    rollup differs from the ledger. Two queries."""
    ledger = Subquery(
        StockMovement.objects.filter(lot=OuterRef("pk"))
        .order_by()
        .values("lot")
        .annotate(total=Sum("quantity"))
        .values("total")[:1],
        output_field=QUANTITY_FIELD,
    )
    rollup = Subquery(
        StockDay.objects.filter(lot=OuterRef("pk"))
        .order_by()
        .values("lot")
        .annotate(total=Sum("quantity"))
        .values("total")[:1],
        output_field=QUANTITY_FIELD,
    )
    lots = Lot.objects.annotate(
        ledger=Coalesce(ledger, ZERO, output_field=QUANTITY_FIELD),
        rollup=Coalesce(rollup, ZERO, output_field=QUANTITY_FIELD),
    ).filter(~Q(quantity_on_hand=F("ledger")) | ~Q(rollup=F("ledger")))
    return [
        LedgerDiscrepancy(lot.pk, str(lot), lot.quantity_on_hand, lot.ledger, lot.rollup)
        for lot in lots.select_related("product").order_by("id")
    ]
