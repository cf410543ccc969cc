"""The managers' stock reports. Each is one or two aggregate queries, whatever the size of the
ledger: snapshots read the lots, flows over a period read the daily rollup (StockDay).

Quantities are in each product's stock units; values are at the cost of the lot when stock
moved (flows) or at the lot's current cost (snapshots of today)."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    Count,
    DateField,
    DecimalField,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    Window,
)
from django.db.models.functions import (
    Cast,
    Coalesce,
    TruncDate,
    TruncDay,
    TruncMonth,
    TruncWeek,
)
from django.db.models.query import EmptyQuerySet
from django.utils import timezone

from clinic.substances import SubstanceCategory

from .models import (
    Lot,
    LotStatus,
    MovementKind,
    Product,
    StockDay,
    StockMonth,
    StockMovement,
    StockUnit,
    on_shelf_condition,
    usable,
    usable_condition,
)

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

    def is_usable_on(self, day: date) -> bool:
        return usable(self.status, self.expiry_date, day)


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


def _with_shelf(products: QuerySet[Product]) -> QuerySet[Product]:
    """Products joined to their lots still on the shelf (as `shelf`), a product without any
    kept with none: the join reads the few hundred lots the partial index `lot_on_shelf_idx`
    holds, not every lot ever received."""
    return products.annotate(
        shelf=FilteredRelation("lots", condition=on_shelf_condition(via="lots__"))
    )


def on_hand(
    *,
    category: str | None = None,
    today: date,
    product_ids: list[int] | None = None,
    with_lots: bool = True,
) -> list[ProductStock]:
    """Each product with what is on the shelf, what of it is usable today, its value at cost,
    and (`with_lots`) its lots on the shelf, earliest expiry first. Two queries, or one."""
    products = _with_shelf(_products(category))
    if product_ids is not None:
        products = products.filter(pk__in=product_ids)
    rows = (
        products.annotate(
            on_hand=Coalesce(Sum("shelf__quantity_on_hand"), ZERO, output_field=QUANTITY_FIELD),
            usable=Coalesce(
                Sum("shelf__quantity_on_hand", filter=usable_condition(today, via="shelf__")),
                ZERO,
                output_field=QUANTITY_FIELD,
            ),
            value=Coalesce(
                Sum(F("shelf__quantity_on_hand") * F("shelf__unit_cost"), output_field=MONEY_FIELD),
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
    if with_lots:
        attach_lots(list(stock.values()))
    return list(stock.values())


def attach_lots(products: list[ProductStock]) -> None:
    """Fills in each product's lots on the shelf, earliest expiry first. One query."""
    stock = {product.product_id: product for product in products}
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


def low_stock(*, category: str | None = None, today: date) -> list[ProductStock]:
    """Active products whose usable quantity is at or below their reorder level. One query."""
    rows = (
        _with_shelf(_products(category))
        .filter(active=True)
        .annotate(
            on_hand=Coalesce(Sum("shelf__quantity_on_hand"), ZERO, output_field=QUANTITY_FIELD),
            usable=Coalesce(
                Sum("shelf__quantity_on_hand", filter=usable_condition(today, via="shelf__")),
                ZERO,
                output_field=QUANTITY_FIELD,
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


PERIODS = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}
# What a flow is grouped by: the same column in both rollups.
FLOW_KEYS = {"product": "product_id", "category": "product__category", "user": "actor_id"}


class FlowRow(NamedTuple):
    """One period of one product, category (its code as label here) or user."""

    period: date
    key: object
    label: str
    quantity: Decimal
    value: Decimal


def _decimal(value) -> Decimal:
    # SQLite hands back sums as floats and dates as text; PostgreSQL as Decimal and date.
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def _flow_row(row) -> FlowRow:
    period = row[0]
    if isinstance(period, str):
        period = date.fromisoformat(period[:10])
    elif isinstance(period, datetime):
        period = period.date()
    return FlowRow(period, row[1], row[2], _decimal(row[3]), _decimal(row[4]))


@dataclass(frozen=True)
class Span:
    """A period cut into whole months (read from StockMonth) and the days left at its edges
    (read from StockDay)."""

    months: tuple[date, date] | None  # first day of the first whole month, first day after
    edges: tuple[tuple[date, date], ...]

    @classmethod
    def of(cls, date_from: date, date_to: date) -> "Span":
        first = date_from if date_from.day == 1 else _next_month(date_from)
        after = date_to + timedelta(days=1)
        end = after if after.day == 1 else date_to.replace(day=1)
        if first >= end:
            return cls(None, ((date_from, date_to),))
        edges = []
        if date_from < first:
            edges.append((date_from, first - timedelta(days=1)))
        if end <= date_to:
            edges.append((end, date_to))
        return cls((first, end), tuple(edges))

    def edge_months(self) -> list[tuple[date, date, date]]:
        """The edge days cut at month ends: (first day of the month, first day, last day). A
        period shorter than a whole month can straddle two months; no month comes twice."""
        pieces = []
        for start, end in self.edges:
            while start <= end:
                last = min(end, _next_month(start) - timedelta(days=1))
                pieces.append((start.replace(day=1), start, last))
                start = last + timedelta(days=1)
        return pieces


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _month_rows(kinds, span: Span, category: str | None) -> QuerySet[StockMonth]:
    if span.months is None:
        return StockMonth.objects.none()
    rows = StockMonth.objects.filter(
        kind__in=kinds, month__gte=span.months[0], month__lt=span.months[1]
    )
    return rows.filter(product__category=category) if category else rows


def _day_rows(kinds, ranges, category: str | None) -> QuerySet[StockDay]:
    if not ranges:
        return StockDay.objects.none()
    within = Q()
    for start, end in ranges:
        within |= Q(day__gte=start, day__lte=end)
    rows = StockDay.objects.filter(within, kind__in=kinds)
    return rows.filter(product__category=category) if category else rows


def _flow_labels(group: str) -> tuple[str, str]:
    """The label column of a flow grouped by `group`, and the join that brings it."""
    if group == "category":
        return "flows.flow_key", ""
    model = Product if group == "product" else get_user_model()
    name_field = "name" if group == "product" else model.USERNAME_FIELD
    quote = connection.ops.quote_name
    return (
        f"names.{quote(model._meta.get_field(name_field).column)}",
        f"JOIN {quote(model._meta.db_table)} AS names "
        f"ON names.{quote(model._meta.pk.column)} = flows.flow_key",
    )


def _consumption_sql(
    *, date_from: date, date_to: date, category: str | None, group: str, period: str
) -> tuple[str, tuple] | None:
    """Net consumption (reversals deducted) per period and per product, category or acting
    user, as positive quantities and values, as one query: (period, key, label, quantity,
    value) rows, not yet sorted. None when the period has no day.

    Per month: whole months from the monthly rollup, and each month's edge days from the daily
    one, with that month as a constant (truncating each daily row's date to its month took
    as long as the rest of the query); no month comes from two parts, so the parts are a
    UNION ALL and nothing is summed across them. Per day or week: the daily rollup. The parts
    group by ids; the names are joined to the few thousand groups, not to every rollup row,
    which the ORM cannot write around a union."""
    kinds = [MovementKind.CONSUMPTION]
    key = F(FLOW_KEYS[group])
    if period == "month":
        span = Span.of(date_from, date_to)
        parts = [_month_rows(kinds, span, category).values(flow_period=F("month"), flow_key=key)]
        parts += [
            _day_rows(kinds, [(start, end)], category).values(
                flow_period=Value(month, output_field=DateField()), flow_key=key
            )
            for month, start, end in span.edge_months()
        ]
    else:
        truncated = Cast(PERIODS[period]("day"), output_field=DateField())
        parts = [
            _day_rows(kinds, [(date_from, date_to)], category).values(
                flow_period=truncated, flow_key=key
            )
        ]
    summed = [
        part.annotate(flow_quantity=-Sum("quantity"), flow_value=-Sum("value")).order_by()
        for part in parts
        if not isinstance(part, EmptyQuerySet)
    ]
    if not summed:
        return None
    flows, params = summed[0].union(*summed[1:], all=True).query.sql_with_params()
    label, join = _flow_labels(group)
    return (
        f"SELECT flows.flow_period, flows.flow_key, {label} AS flow_label, flows.flow_quantity, "
        f"flows.flow_value FROM ({flows}) AS flows {join}",
        params,
    )


# The order of a consumption report: by period, then by the name shown.
FLOW_ORDER = "ORDER BY 1, 3, 2"
LARGEST_OFFSET = 2**63 - 1


def consumption(
    *,
    date_from: date,
    date_to: date,
    category: str | None = None,
    group: str = "product",
    period: str = "month",
) -> list[FlowRow]:
    """Every row of the consumption report (see _consumption_sql), by period and label, sorted
    in the database. One query."""
    query = _consumption_sql(
        date_from=date_from, date_to=date_to, category=category, group=group, period=period
    )
    if query is None:
        return []
    with connection.cursor() as cursor:
        cursor.execute(f"{query[0]} {FLOW_ORDER}", query[1])
        return [_flow_row(row) for row in cursor.fetchall()]


@dataclass
class FlowPage:
    rows: list[FlowRow]
    number: int  # the page these rows are, counting from 1
    count: int  # rows in the whole report
    total_value: Decimal  # of the whole report


def consumption_page(
    *,
    date_from: date,
    date_to: date,
    category: str | None = None,
    group: str = "product",
    period: str = "month",
    number: int = 1,
    per_page: int = 100,
) -> FlowPage:
    """One page of the consumption report, with the size and value of the whole report, in
    one query (window totals beside a LIMIT), so that only the page's rows leave the database.
    A page past the last (or below the first) gives the last page, at two queries more."""
    query = _consumption_sql(
        date_from=date_from, date_to=date_to, category=category, group=group, period=period
    )
    if query is None:
        return FlowPage([], 1, 0, ZERO)
    sql, params = query
    # The offset is a bigint in PostgreSQL: a number past that is past the last page too.
    if 1 <= number <= LARGEST_OFFSET // per_page:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT *, count(*) OVER (), sum(flow_value) OVER () FROM ({sql}) AS report "
                f"{FLOW_ORDER} LIMIT %s OFFSET %s",
                (*params, per_page, (number - 1) * per_page),
            )
            found = cursor.fetchall()
        if found:
            rows = [_flow_row(row) for row in found]
            return FlowPage(rows, number, found[0][5], _decimal(found[0][6]))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), sum(flow_value) FROM ({sql}) AS report", params)
        count, total = cursor.fetchone()
    if not count:
        return FlowPage([], 1, 0, ZERO)
    last = -(-count // per_page)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{sql} {FLOW_ORDER} LIMIT %s OFFSET %s", (*params, per_page, (last - 1) * per_page)
        )
        return FlowPage([_flow_row(row) for row in cursor.fetchall()], last, count, _decimal(total))


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

    @property
    def share_percent(self) -> Decimal | None:
        """share_of_consumption as a percentage, to one decimal place."""
        share = self.share_of_consumption
        return None if share is None else (share * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)


def waste(*, date_from: date, date_to: date, category: str | None = None) -> WasteReport:
    """Waste per reason, and against consumption over the same period: whole months from the
    monthly rollup, the edge days from the daily one. Two queries."""
    kinds = [MovementKind.WASTE, MovementKind.CONSUMPTION]
    span = Span.of(date_from, date_to)
    totals: dict[tuple[str, str], list[Decimal]] = {}
    for part in (_month_rows(kinds, span, category), _day_rows(kinds, span.edges, category)):
        for row in (
            part.values("kind", "waste_reason")
            .annotate(quantity=Sum("quantity"), value=Sum("value"))
            .order_by()
        ):
            total = totals.setdefault((row["kind"], row["waste_reason"]), [ZERO, ZERO])
            total[0] -= row["quantity"]
            total[1] -= row["value"]
    by_reason = sorted(
        (reason, quantity, value)
        for (kind, reason), (quantity, value) in totals.items()
        if kind == MovementKind.WASTE
    )
    consumed = totals.get((MovementKind.CONSUMPTION, ""), [ZERO, ZERO])
    return WasteReport(
        by_reason=by_reason,
        waste_quantity=sum((q for _, q, _ in by_reason), ZERO),
        waste_value=sum((v for _, _, v in by_reason), ZERO),
        consumption_quantity=consumed[0],
        consumption_value=consumed[1],
    )


@dataclass
class ValuationRow:
    category: str
    lots: int | None
    quantity: Decimal
    value: Decimal


def valuation(*, as_of: date, today: date, category: str | None = None) -> list[ValuationRow]:
    """Stock value at cost per category. Today: from the lots (one query). On an earlier day:
    the flows up to that day's end, whole months from the monthly rollup and that month's days
    from the daily one (two queries; the number of lots is not known then)."""
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
    month = as_of.replace(day=1)
    months = StockMonth.objects.filter(month__lt=month)
    days = StockDay.objects.filter(day__gte=month, day__lte=as_of)
    if category:
        months = months.filter(product__category=category)
        days = days.filter(product__category=category)
    totals: dict[str, ValuationRow] = {}
    for part, key in ((months, "product__category"), (days, "product__category")):
        for row in (
            part.values(flow_key=F(key))
            .annotate(quantity=Sum("quantity"), value=Sum("value"))
            .order_by()
        ):
            total = totals.setdefault(
                row["flow_key"], ValuationRow(row["flow_key"], None, ZERO, ZERO)
            )
            total.quantity += row["quantity"]
            total.value += row["value"]
    return [totals[key] for key in sorted(totals) if totals[key].quantity > 0]


class LedgerLine(NamedTuple):
    id: int
    occurred_at: datetime
    kind: str
    quantity: Decimal
    balance: Decimal
    actor_username: str
    actor_name: str  # first and last name, or empty
    waste_reason: str
    reason: str
    reference: str
    reverses_id: int | None


class LotLedgerLines:
    """A lot's ledger lines, read as they are asked for: a slice (a page, which Paginator asks
    for) reads only its rows. The balance is a window over the whole period, which PostgreSQL
    and SQLite compute before the LIMIT, so a page deep in a long ledger still starts from the
    right balance."""

    def __init__(self, movements: QuerySet, opening: Decimal):
        self._movements = movements
        self._opening = opening
        self._rows = (
            movements.annotate(
                running=Window(Sum("quantity"), order_by=[F("occurred_at").asc(), F("id").asc()])
            )
            .order_by("occurred_at", "id")
            .values_list(
                "id",
                "occurred_at",
                "kind",
                "quantity",
                "running",
                f"actor__{get_user_model().USERNAME_FIELD}",
                "actor__first_name",
                "actor__last_name",
                "waste_reason",
                "reason",
                "reference",
                "reverses_id",
            )
        )

    def count(self) -> int:
        return self._movements.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[LedgerLine]:
        if not isinstance(index, slice):
            raise TypeError("Ask for a slice of the ledger.")
        return self._lines(self._rows[index])

    def __iter__(self):
        return iter(self._lines(self._rows))

    def _lines(self, rows) -> list[LedgerLine]:
        opening = self._opening
        return [
            LedgerLine(
                pk,
                at,
                kind,
                quantity,
                opening + running,
                username,
                f"{first} {last}".strip(),
                *rest,
            )
            for pk, at, kind, quantity, running, username, first, last, *rest in rows
        ]


def lot_ledger(
    *, lot: Lot, date_from: date | None = None, date_to: date | None = None
) -> LotLedgerLines:
    """The movements of one lot, oldest first, with the balance after each: a running sum
    (a window over the lot's movements) plus, when the period starts later, what came before
    it. One query for what came before, one for the lines (a page of them: one more to count
    them)."""
    movements = StockMovement.objects.filter(lot=lot)
    opening = ZERO
    if date_from:
        opening = (
            movements.filter(occurred_at__date__lt=date_from).aggregate(total=Sum("quantity"))[
                "total"
            ]
            or ZERO
        )
        movements = movements.filter(occurred_at__date__gte=date_from)
    if date_to:
        movements = movements.filter(occurred_at__date__lte=date_to)
    return LotLedgerLines(movements, opening)


@dataclass
class LedgerDiscrepancy:
    lot_id: int
    lot: str
    on_hand: Decimal
    ledger: Decimal
    rollup: Decimal


def _sum_per(rows: QuerySet, group: str) -> Coalesce:
    """For annotating: the sum of `rows`' quantities that belong to the outer row (zero if
    none), `rows` already filtered on OuterRef("pk") and grouped by `group`."""
    total = rows.order_by().values(group).annotate(total=Sum("quantity")).values("total")[:1]
    return Coalesce(Subquery(total, output_field=QUANTITY_FIELD), ZERO, output_field=QUANTITY_FIELD)


def ledger_discrepancies() -> list[LedgerDiscrepancy]:
    """Lots whose quantity on hand differs from the sum of their movements, or whose daily
    rollup differs from the ledger. One query."""
    lots = Lot.objects.annotate(
        ledger=_sum_per(StockMovement.objects.filter(lot=OuterRef("pk")), "lot"),
        rollup=_sum_per(StockDay.objects.filter(lot=OuterRef("pk")), "lot"),
    ).filter(~Q(quantity_on_hand=F("ledger")) | ~Q(rollup=F("ledger")))
    return [
        LedgerDiscrepancy(lot.pk, str(lot), lot.quantity_on_hand, lot.ledger, lot.rollup)
        for lot in lots.select_related("product").order_by("id")
    ]


@dataclass
class MonthDiscrepancy:
    product_id: int
    product: str
    ledger: Decimal
    rollup: Decimal


def month_discrepancies() -> list[MonthDiscrepancy]:
    """Products whose monthly rollup does not add up to their ledger. One query."""
    products = Product.objects.annotate(
        ledger=_sum_per(StockMovement.objects.filter(lot__product=OuterRef("pk")), "lot__product"),
        rollup=_sum_per(StockMonth.objects.filter(product=OuterRef("pk")), "product"),
    ).filter(~Q(ledger=F("rollup")))
    return [MonthDiscrepancy(p.pk, p.name, p.ledger, p.rollup) for p in products.order_by("id")]


@dataclass
class RollupDiscrepancy:
    """A row of a rollup that is not what its source adds up to: the daily rollup against the
    ledger, the monthly rollup against the daily one. (quantity, value, movements) of each side,
    None where that side has no such row."""

    rollup: str  # "daily" or "monthly"
    owner_id: int  # the lot (daily) or the product (monthly)
    period: date
    kind: str
    actor_id: int
    waste_reason: str
    source: tuple[Decimal, Decimal, int] | None
    found: tuple[Decimal, Decimal, int] | None


# Sums differ in earnest beyond these: SQLite sums decimals as floating-point numbers.
QUANTITY_TOLERANCE = Decimal("0.0005")
VALUE_TOLERANCE = Decimal("0.000005")


def _rollup_groups(rows, owner: str, period, **sums) -> QuerySet:
    """`rows` grouped as a rollup row is keyed: owner (lot or product), period (day or
    month), kind, user, waste reason."""
    return rows.values(
        key_owner=F(owner),
        key_period=period,
        key_kind=F("kind"),
        key_actor=F("actor_id"),
        key_reason=F("waste_reason"),
    ).annotate(**sums)


def _rollup_sums() -> dict:
    return {
        "sum_quantity": Sum("quantity"),
        "sum_value": Sum("value"),
        "sum_movements": Sum("movements"),
    }


def rollup_discrepancies(limit: int = 50) -> list[RollupDiscrepancy]:
    """Every rollup row whose quantity, value or count of movements differs from its source
    grouped the same way, or that only one side has (at most `limit` of each rollup): the
    reports read these columns row by row, which the per-lot and per-product totals of
    ledger_discrepancies() and month_discrepancies() cannot see. Two queries, each reading
    the whole ledger or daily rollup: for the checking command, not for a page."""
    ledger = _rollup_groups(
        StockMovement.objects,
        "lot_id",
        TruncDate("occurred_at", tzinfo=timezone.get_current_timezone()),
        sum_quantity=Sum("quantity"),
        sum_value=Sum(F("quantity") * F("unit_cost"), output_field=MONEY_FIELD),
        sum_movements=Count("id"),
    )
    daily = _rollup_groups(StockDay.objects, "lot_id", F("day"), **_rollup_sums())
    daily_by_month = _rollup_groups(
        StockDay.objects,
        "product_id",
        Cast(TruncMonth("day"), output_field=DateField()),
        **_rollup_sums(),
    )
    monthly = _rollup_groups(StockMonth.objects, "product_id", F("month"), **_rollup_sums())
    found = []
    keys = ", ".join(("key_owner", "key_period", "key_kind", "key_actor", "key_reason"))
    for name, source, rollup in (("daily", ledger, daily), ("monthly", daily_by_month, monthly)):
        source_sql, source_params = source.order_by().query.sql_with_params()
        rollup_sql, rollup_params = rollup.order_by().query.sql_with_params()
        # Both sides in one column set, summed per key: a key one side lacks has no rows of
        # it. (A UNION ALL rather than a FULL OUTER JOIN, which SQLite has only since 3.39.)
        sides = (
            f"SELECT {keys}, sum_quantity AS s_quantity, sum_value AS s_value, "
            "sum_movements AS s_movements, 1 AS s_rows, NULL AS r_quantity, NULL AS r_value, "
            f"NULL AS r_movements, 0 AS r_rows FROM ({source_sql}) AS s "
            f"UNION ALL SELECT {keys}, NULL, NULL, NULL, 0, sum_quantity, sum_value, "
            f"sum_movements, 1 FROM ({rollup_sql}) AS r"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {keys}, sum(s_quantity), sum(s_value), sum(s_movements), "
                "sum(r_quantity), sum(r_value), sum(r_movements), sum(s_rows), sum(r_rows) "
                f"FROM ({sides}) AS sides GROUP BY {keys} "
                "HAVING sum(s_rows) = 0 OR sum(r_rows) = 0 "
                "OR abs(sum(s_quantity) - sum(r_quantity)) > %s "
                "OR abs(sum(s_value) - sum(r_value)) > %s "
                "OR sum(s_movements) <> sum(r_movements) "
                f"ORDER BY {keys} LIMIT %s",
                (*source_params, *rollup_params, QUANTITY_TOLERANCE, VALUE_TOLERANCE, limit),
            )
            for row in cursor.fetchall():
                period = row[1]
                if isinstance(period, str):  # SQLite
                    period = date.fromisoformat(period[:10])
                source_side, rollup_side = (
                    (_decimal(side[0]), _decimal(side[1]), int(side[2])) if present else None
                    for side, present in ((row[5:8], row[11]), (row[8:11], row[12]))
                )
                found.append(
                    RollupDiscrepancy(name, row[0], period, *row[2:5], source_side, rollup_side)
                )
    return found
