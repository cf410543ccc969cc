"""The stock reports on a small hand-built stock room whose every figure is known."""

from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory import reports, services
from tests.factories import ProductFactory, UserFactory, receive

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def at(day, hour=10):
    return timezone.make_aware(datetime.combine(day, time(hour)))


@pytest.fixture
def room():
    """Received 60 days ago. HA (vials at 10.00): lot A 10 units expiring in 20 days, lot B 20
    units in 200 days. Cocktail (ampoules at 4.00): lot C 5 units, quarantined. Needles:
    nothing received. Ana took 3 HA on day -40 and 2 on day -10, all from lot A (first expiry);
    Luis took 4 on day -10: 4 from A... A then holds 1; his draw is reversed today (+4 on A).
    1 HA from lot B wasted as damaged today. HA on hand: 30 - 9 + 4 - 1 = 24."""
    ana, luis, boss = (UserFactory(username=name) for name in ("ana", "luis", "boss"))
    ha = ProductFactory(name="HA", category="hyaluronic_acid", reorder_level=Decimal(25))
    cocktail = ProductFactory(
        name="Cocktail", category="vitamin_cocktail", stock_unit="ampoule", reorder_level=Decimal(2)
    )
    ProductFactory(
        name="Needles", category="consumable", stock_unit="piece", reorder_level=Decimal(100)
    )
    start = at(TODAY - timedelta(days=60))
    a = receive(
        ha,
        lot_number="A",
        quantity="10",
        cost="10",
        expiry=TODAY + timedelta(days=20),
        actor=boss,
        occurred_at=start,
    )
    b = receive(
        ha,
        lot_number="B",
        quantity="20",
        cost="10",
        expiry=TODAY + timedelta(days=200),
        actor=boss,
        occurred_at=start,
    )
    c = receive(
        cocktail,
        lot_number="C",
        quantity="5",
        cost="4",
        expiry=TODAY + timedelta(days=50),
        actor=boss,
        occurred_at=start,
    )
    services.lot_quarantine(lot=c, actor=boss, reason="fridge alarm")
    day40, day10 = TODAY - timedelta(days=40), TODAY - timedelta(days=10)
    services.stock_consume(
        product=ha, quantity=Decimal(3), on=day40, actor=ana, occurred_at=at(day40)
    )
    services.stock_consume(
        product=ha, quantity=Decimal(2), on=day10, actor=ana, occurred_at=at(day10)
    )
    taken = services.stock_consume(
        product=ha, quantity=Decimal(4), on=day10, actor=luis, occurred_at=at(day10, 11)
    )
    services.movement_reverse(movement=taken[-1], actor=luis, reason="logged twice")
    services.stock_discard(lot=b, quantity=Decimal(1), reason="damaged", actor=boss)
    return {"ha": ha, "cocktail": cocktail, "a": a, "b": b, "c": c}


def test_on_hand_by_product_with_lots_and_value(room):
    by_name = {p.name: p for p in reports.on_hand(today=TODAY)}
    ha = by_name["HA"]
    assert (ha.on_hand, ha.usable, ha.value) == (Decimal(24), Decimal(24), Decimal(240))
    assert [(lot.lot_number, lot.quantity) for lot in ha.lots] == [("A", 5), ("B", 19)]
    cocktail = by_name["Cocktail"]
    assert (cocktail.on_hand, cocktail.usable, cocktail.value) == (5, 0, 20)
    assert by_name["Needles"].on_hand == 0 and by_name["Needles"].lots == []


def test_a_product_whose_lots_are_all_used_up_shows_nothing_on_the_shelf(room):
    """Emptied lots leave the shelf: the product stays in the reports, with nothing on hand."""
    services.stock_discard(
        lot=room["c"], quantity=Decimal(5), reason="cold_chain", actor=UserFactory()
    )
    cocktail = next(p for p in reports.on_hand(today=TODAY) if p.name == "Cocktail")
    assert (cocktail.on_hand, cocktail.usable, cocktail.value, cocktail.lots) == (0, 0, 0, [])
    low = {p.name: (p.on_hand, p.usable) for p in reports.low_stock(today=TODAY)}
    assert low["Cocktail"] == (0, 0)


@pytest.mark.postgres
def test_the_snapshot_reports_read_the_lots_on_the_shelf_through_their_index(room):
    """On PostgreSQL the on-hand, low-stock, expiring and valuation queries can use the partial
    index of the lots on the shelf: their filter is the index's condition, so their cost
    follows the stock, not every lot ever received."""
    with CaptureQueriesContext(connection) as queries:
        reports.on_hand(today=TODAY)
        reports.low_stock(today=TODAY)
        reports.expiring(today=TODAY, until=TODAY + timedelta(days=30))
        reports.valuation(as_of=TODAY, today=TODAY)
    with connection.cursor() as cursor:
        # With a few rows a table scan is cheaper: forbid it, so the plan shows what the
        # planner may use.
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in queries.captured_queries:
            cursor.execute(f"EXPLAIN {query['sql']}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "lot_on_shelf_idx" in plan, plan


def test_on_hand_filters_by_category(room):
    assert [p.name for p in reports.on_hand(today=TODAY, category="vitamin_cocktail")] == [
        "Cocktail"
    ]


def test_low_stock_is_usable_quantity_at_or_below_reorder_level(room):
    assert [(p.name, p.usable) for p in reports.low_stock(today=TODAY)] == [
        ("Cocktail", 0),
        ("HA", 24),
        ("Needles", 0),
    ]
    assert [p.name for p in reports.low_stock(today=TODAY, category="consumable")] == ["Needles"]


def test_an_expired_lot_does_not_count_as_usable(room):
    later = TODAY + timedelta(days=21)
    ha = next(p for p in reports.on_hand(today=later) if p.name == "HA")
    assert (ha.on_hand, ha.usable) == (24, 19)


def test_expiring_lists_lots_within_the_window_and_expired_ones(room):
    assert [
        lot.lot_number for lot in reports.expiring(today=TODAY, until=TODAY + timedelta(days=30))
    ] == ["A"]
    assert [
        lot.lot_number for lot in reports.expiring(today=TODAY, until=TODAY + timedelta(days=60))
    ] == ["A", "C"]
    later = TODAY + timedelta(days=25)
    [expired, *_] = reports.expiring(today=later, until=later + timedelta(days=30))
    assert (expired.lot_number, expired.days_left) == ("A", -5)


def test_consumption_by_product_user_and_category(room):
    window = {"date_from": TODAY - timedelta(days=90), "date_to": TODAY}
    by_product = reports.consumption(**window, group="product", period="month")
    assert sum(r.quantity for r in by_product) == 5  # 3 + 2 + 4, less the 4 reversed
    assert sum(r.value for r in by_product) == Decimal(50)
    by_user = {}
    for r in reports.consumption(**window, group="user", period="month"):
        by_user[r.label] = by_user.get(r.label, 0) + r.quantity
    assert by_user == {"ana": 5, "luis": 0}
    by_category = reports.consumption(**window, group="category", period="month")
    assert {r.key for r in by_category} == {"hyaluronic_acid"}


def test_consumption_per_day_and_date_range(room):
    rows = reports.consumption(
        date_from=TODAY - timedelta(days=15), date_to=TODAY, group="user", period="day"
    )
    # The reversal is posted on the day it is made, so each day shows what happened on it.
    assert [(r.period, r.label, r.quantity) for r in rows] == [
        (TODAY - timedelta(days=10), "ana", 2),
        (TODAY - timedelta(days=10), "luis", 4),
        (TODAY, "luis", -4),
    ]


def test_waste_by_reason_and_share_of_consumption(room):
    report = reports.waste(date_from=TODAY - timedelta(days=90), date_to=TODAY)
    assert report.by_reason == [("damaged", Decimal(1), Decimal(10))]
    assert (report.consumption_quantity, report.consumption_value) == (5, 50)
    assert report.share_of_consumption == Decimal("0.2")
    assert (
        reports.waste(
            date_from=TODAY - timedelta(days=90), date_to=TODAY, category="consumable"
        ).share_of_consumption
        is None
    )


def test_valuation_today_and_on_an_earlier_day(room):
    today = {
        r.category: (r.lots, r.quantity, r.value)
        for r in reports.valuation(as_of=TODAY, today=TODAY)
    }
    assert today == {"hyaluronic_acid": (2, 24, 240), "vitamin_cocktail": (1, 5, 20)}
    earlier = {
        r.category: (r.quantity, r.value)
        for r in reports.valuation(as_of=TODAY - timedelta(days=20), today=TODAY)
    }
    assert earlier == {"hyaluronic_acid": (27, 270), "vitamin_cocktail": (5, 20)}


def test_lot_ledger_with_running_balance(room):
    rows = list(reports.lot_ledger(lot=room["a"]))
    assert [(m.kind, m.quantity, m.balance) for m in rows] == [
        ("receipt", 10, 10),
        ("consumption", -3, 7),
        ("consumption", -2, 5),
        ("consumption", -4, 1),
        ("consumption", 4, 5),
    ]


def test_a_page_of_a_lot_ledger_reads_only_its_rows_and_keeps_the_running_balance(room):
    ledger = reports.lot_ledger(lot=room["a"])
    assert ledger.count() == len(ledger) == 5
    with CaptureQueriesContext(connection) as captured:
        page = ledger[2:4]
    assert [(m.quantity, m.balance) for m in page] == [(-2, 5), (-4, 1)]
    (query,) = captured.captured_queries
    assert "LIMIT 2" in query["sql"]


def test_past_valuation_agrees_with_today_after_a_lot_cost_is_averaged():
    """10 received at 10.00, 5 consumed, 5 more at 20.00: 10 units worth 150 either way."""
    product = ProductFactory(category="hyaluronic_acid")
    actor = UserFactory(username="boss")
    expiry = TODAY + timedelta(days=100)
    receive(product, lot_number="L", quantity="10", cost="10", expiry=expiry, actor=actor)
    services.stock_consume(product=product, quantity=Decimal(5), on=TODAY, actor=actor)
    receive(product, lot_number="L", quantity="5", cost="20", expiry=expiry, actor=actor)
    [today] = reports.valuation(as_of=TODAY, today=TODAY)
    [from_flows] = reports.valuation(as_of=TODAY, today=TODAY + timedelta(days=1))
    assert today.value == from_flows.value == Decimal(150)


def test_a_reversal_after_the_lot_cost_changed_cancels_the_consumption_it_reverses():
    """A nurse took 2 at 10.00; a delivery at 30.00 averaged the lot; a manager reversed the
    consumption. The consumption nets to nothing, and the past valuation agrees with today's."""
    product = ProductFactory(category="hyaluronic_acid")
    nurse, boss = UserFactory(username="nurse"), UserFactory(username="boss")
    expiry = TODAY + timedelta(days=100)
    receive(product, lot_number="L", quantity="10", cost="10", expiry=expiry, actor=boss)
    [taken] = services.stock_consume(product=product, quantity=Decimal(2), on=TODAY, actor=nurse)
    receive(product, lot_number="L", quantity="10", cost="30", expiry=expiry, actor=boss)
    services.movement_reverse(movement=taken, actor=boss, reason="logged twice")
    rows = reports.consumption(date_from=TODAY, date_to=TODAY, group="user", period="day")
    assert sum(row.quantity for row in rows) == 0
    assert sum(row.value for row in rows) == 0
    [today] = reports.valuation(as_of=TODAY, today=TODAY)
    [from_flows] = reports.valuation(as_of=TODAY, today=TODAY + timedelta(days=1))
    assert today.value == from_flows.value == Decimal(400)


@pytest.mark.parametrize(
    ("start", "end", "months", "edges"),
    [
        (
            (2026, 1, 15),
            (2026, 4, 10),
            ((2026, 2, 1), (2026, 4, 1)),
            [((2026, 1, 15), (2026, 1, 31)), ((2026, 4, 1), (2026, 4, 10))],
        ),
        ((2026, 2, 1), (2026, 3, 31), ((2026, 2, 1), (2026, 4, 1)), []),
        ((2026, 2, 3), (2026, 2, 20), None, [((2026, 2, 3), (2026, 2, 20))]),
        (
            (2026, 12, 5),
            (2027, 1, 31),
            ((2027, 1, 1), (2027, 2, 1)),
            [((2026, 12, 5), (2026, 12, 31))],
        ),
    ],
)
def test_a_period_is_cut_into_whole_months_and_edge_days(start, end, months, edges):
    from datetime import date

    span = reports.Span.of(date(*start), date(*end))
    assert span.months == (tuple(date(*d) for d in months) if months else None)
    assert list(span.edges) == [(date(*a), date(*b)) for a, b in edges]


def test_monthly_and_daily_figures_agree_across_month_edges():
    """Consumption on days spread over three months, read per month (whole months from the
    monthly rollup, the edges from the daily one) and per day, gives the same totals."""
    product = ProductFactory()
    ana = UserFactory(username="ana")
    start = TODAY - timedelta(days=80)
    receive(product, quantity="100", cost="2", actor=ana, occurred_at=at(start))
    for back in (75, 60, 45, 31, 30, 12, 3):
        day = TODAY - timedelta(days=back)
        services.stock_consume(
            product=product, quantity=Decimal(back % 7 + 1), on=day, actor=ana, occurred_at=at(day)
        )
    window = {"date_from": TODAY - timedelta(days=70), "date_to": TODAY - timedelta(days=5)}
    monthly = reports.consumption(**window, group="user", period="month")
    daily = reports.consumption(**window, group="user", period="day")
    assert (
        sum(r.quantity for r in monthly)
        == sum(r.quantity for r in daily)
        == sum(Decimal(back % 7 + 1) for back in (60, 45, 31, 30, 12))
    )
    assert {r.label for r in monthly} == {"ana"}
    waste = reports.waste(**window)
    assert waste.consumption_value == sum(r.value for r in daily)
