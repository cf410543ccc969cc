"""Benchmark of the managers' stock reports on a large ledger.

Fills a PostgreSQL database with a few years of stock (products, lots, movements and the daily
rollup) by set-based SQL, checks that the data keeps the invariants the app relies on, then times
every report page through Django's test client and, beside it, one hand-written SQL query per
report that computes the same result: over the raw ledger, and over the daily rollup where the
report reads one. docs/benchmarks.md ("Stock reports") has the figures and how to read them.

    DJANGO_DEBUG=1 DATABASE_URL=postgres://clinic:clinic@127.0.0.1:5432/clinic_bench \\
        REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/stock_reports.py [--products 200 --lots 20000 --movements 2000000]

REDIS_URL puts the cache (sessions, permissions) in Redis, as in production; without it each
page reads the user's permissions from the database.

`--reuse` skips the fill and measures the data already there. The fill TRUNCATEs every inventory
table (and empty tables of other apps that point at them), so the script refuses to run unless
the database name contains "bench" (or `--force`).
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.measure import percentile  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.migrations.executor import MigrationExecutor  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from clinic.accounts import user_set_roles  # noqa: E402
from clinic.roles import MANAGER  # noqa: E402
from clinic.substances import SubstanceCategory  # noqa: E402
from inventory import reports  # noqa: E402
from inventory.models import Lot  # noqa: E402
from inventory.views import PRODUCTS_PER_PAGE  # noqa: E402

TARGET_MEDIAN_MS = 150
TARGET_RATIO = 1.5
HISTORY_DAYS = 3 * 365
# The users who post movements: practitioners consume, managers receive, count and discard.
PRACTITIONERS = 7
MANAGERS = 3
VIEWER = "bench_reports"  # the Manager the report pages are requested as; posts nothing

# Per category: stock unit, storage, the range of a unit's cost, and how much more often than
# the others it moves (needles and cartridges go one or more per session).
CATEGORY_SHAPE = {
    SubstanceCategory.HYALURONIC_ACID: ("syringe", "room", 40, 90, 1.0),
    SubstanceCategory.VITAMIN_COCKTAIL: ("vial", "fridge", 8, 25, 1.0),
    SubstanceCategory.PRP: ("kit", "room", 30, 60, 0.6),
    SubstanceCategory.ANAESTHETIC: ("tube", "room", 5, 15, 0.8),
    SubstanceCategory.CONSUMABLE: ("piece", "room", 0.1, 2, 2.0),
}
INVENTORY_TABLES = [
    "inventory_stockmonth",
    "inventory_stockday",
    "inventory_stockmovement",
    "inventory_historicallot",
    "inventory_lot",
    "inventory_historicalproduct",
    "inventory_product",
    "inventory_supplier",
    "inventory_stockdigest",
]


# ---------------------------------------------------------------------------------------------
# The fill
# ---------------------------------------------------------------------------------------------

# Suppliers and products. Categories turn round-robin, so each holds a fifth of the products.
FILL_PRODUCTS = """
INSERT INTO inventory_supplier (name, contact_name, email, phone, notes)
SELECT format('Bench supplier %%s', i), '', '', '', '' FROM generate_series(1, 8) AS i;

CREATE TEMP TABLE bench_category ON COMMIT DROP AS
SELECT position - 1 AS n, code, stock_unit, storage, cost_low, cost_high, busy
FROM unnest(%(codes)s::text[], %(units)s::text[], %(storages)s::text[],
            %(cost_low)s::float8[], %(cost_high)s::float8[], %(busy)s::float8[])
     WITH ORDINALITY AS c(code, stock_unit, storage, cost_low, cost_high, busy, position);

INSERT INTO inventory_product (name, manufacturer, category, stock_unit, content_per_unit,
    content_measure, single_use, storage, gtin, reorder_level, active, default_supplier_id)
SELECT format('Bench %%s %%s', replace(c.code, '_', ' '), lpad(i::text, 4, '0')), 'Bench Pharma',
       c.code, c.stock_unit, NULL, '', c.code = 'consumable', c.storage, '', 0,
       random() >= 0.05,  -- one product in twenty is no longer stocked
       (SELECT min(id) FROM inventory_supplier) + mod(i, 8)
FROM generate_series(1, %(products)s) AS i
JOIN bench_category AS c ON c.n = mod(i - 1, %(categories)s)
ORDER BY i;

-- What the rest of the fill needs to know of a product: how busy it is and what it costs.
CREATE TEMP TABLE bench_product ON COMMIT DROP AS
SELECT p.id AS product_id,
       c.busy * exp(random() * 2) AS busy,  -- 1 to 7 times as busy as the quietest
       c.cost_low + random() * (c.cost_high - c.cost_low) AS base_cost
FROM inventory_product AS p JOIN bench_category AS c ON c.code = p.category;
"""

# Lots. Each product's lots are received one after the other at an even pace over the three
# years (with a few days' jitter) and used first-expiry-first-out: a lot is consumed from its
# receipt until a few days after the next one arrives. Expiry is 3 to 24 months after receipt,
# which spreads expiry dates from about 2.7 years ago to 2 years ahead. 2 % of the lots are
# quarantined and 1 % recalled. What is left on a lot at the end: a few dozen units on each
# product's newest lot, sometimes some on the one before, some on quarantined or recalled lots
# received in the last four months (held back; older ones were written off long ago), a little
# on one older lot in 200 (forgotten, often expired), nothing on the rest.
FILL_LOTS = """
CREATE TEMP TABLE bench_lot ON COMMIT DROP AS
WITH per_product AS (
    SELECT product_id, busy, base_cost,
           %(lots)s / %(products)s
           + CASE WHEN row_number() OVER (ORDER BY product_id) <= mod(%(lots)s, %(products)s)
                  THEN 1 ELSE 0 END AS lot_count
    FROM bench_product
), numbered AS (
    SELECT pp.product_id, pp.busy, pp.base_cost, pp.lot_count, k,
           %(first_day)s::date
           + least(%(span)s, floor((k - 1) * %(span)s::float8 / pp.lot_count + random() * 4))::int
             AS received
    FROM per_product AS pp, generate_series(1, pp.lot_count) AS k
), dated AS (
    SELECT n.*,
           n.received + 90 + floor(random() * 640)::int AS expiry,
           lead(n.received) OVER (PARTITION BY n.product_id ORDER BY k) AS next_received,
           random() AS status_draw
    FROM numbered AS n
)
SELECT NULL::bigint AS lot_id, product_id, k, received, expiry,
       format('L%%s-%%s', to_char(received, 'YYMM'), lpad(k::text, 4, '0')) AS lot_number,
       round((base_cost * (0.9 + random() * 0.2))::numeric, 2) AS unit_cost,
       -- the last day a movement other than an expired write-off may happen on
       greatest(received, least(coalesce(next_received + 3, %(last_day)s::date),
                                expiry, %(last_day)s::date)) AS window_end,
       CASE WHEN status_draw < 0.02 THEN 'quarantined'
            WHEN status_draw < 0.03 THEN 'recalled'
            ELSE 'available' END AS status,
       CASE WHEN status_draw < 0.03 AND received >= %(last_day)s::date - 120
                THEN 1 + floor(random() * 10)
            WHEN k = lot_count THEN 5 + floor(random() * 56)
            WHEN k = lot_count - 1 AND random() < 0.5 THEN floor(random() * 11)
            WHEN random() < 0.005 THEN 1 + floor(random() * 5)
            ELSE 0 END::numeric AS leftover,
       busy,
       0::bigint AS movement_count
FROM dated;

INSERT INTO inventory_lot (product_id, lot_number, expiry_date, unit_cost, supplier_id,
    received_on, status, status_reason, quantity_on_hand)
SELECT b.product_id, b.lot_number, b.expiry, b.unit_cost, p.default_supplier_id, b.received,
       b.status,
       CASE b.status WHEN 'quarantined' THEN 'Cold chain in doubt'
                     WHEN 'recalled' THEN 'Manufacturer recall' ELSE '' END,
       0
FROM bench_lot AS b JOIN inventory_product AS p ON p.id = b.product_id
-- lots are created as they are received
ORDER BY b.received, b.product_id;

UPDATE bench_lot AS b SET lot_id = l.id
FROM inventory_lot AS l WHERE l.product_id = b.product_id AND l.lot_number = b.lot_number;

-- Shares the movements other than receipts among the lots, in proportion to how busy the
-- product is and how many days the lot is in use, with a little noise. Exact numeric
-- cumulative sums make the shares add up to the total exactly.
WITH weighted AS (
    SELECT lot_id,
           (busy * (window_end - received + 1) * (0.75 + random() * 0.5))::numeric(20, 6) AS w
    FROM bench_lot
), cumulated AS (
    SELECT lot_id, w, sum(w) OVER (ORDER BY lot_id) AS upto, sum(w) OVER () AS total
    FROM weighted
)
UPDATE bench_lot AS b
SET movement_count = floor(%(others)s * c.upto / c.total)
                     - floor(%(others)s * (c.upto - c.w) / c.total)
FROM cumulated AS c WHERE c.lot_id = b.lot_id;
"""

# Every movement but the receipts, into a staging table first: the receipt of a lot has to
# cover whatever leaves it later, which is known only once those movements exist. Kinds: 90.5 %
# consumption, 4 % waste, 2 % adjustment, 3 % count correction, 0.5 % return. Times are within
# opening hours (9:00 to 20:00, clinic time) on a day of the lot's window; stock written off
# as expired goes the day after its expiry.
FILL_MOVEMENTS = """
CREATE TEMP TABLE bench_movement (
    seq bigint GENERATED ALWAYS AS IDENTITY,
    lot_id bigint, kind text, quantity numeric(12, 3), occurred_at timestamptz,
    actor_id integer, waste_reason text, reason text, reference text
) ON COMMIT DROP;

INSERT INTO bench_movement (lot_id, kind, quantity, occurred_at, actor_id, waste_reason,
                            reason, reference)
SELECT lot_id, kind, quantity,
       ((CASE WHEN waste_reason = 'expired' THEN expiry + 1 ELSE day END)
        + make_interval(secs => 9 * 3600 + floor(random() * 11 * 3600)))
           AT TIME ZONE %(tz)s,
       CASE WHEN kind = 'consumption'
            THEN (%(practitioners)s::int[])[1 + floor(random() * %(practitioner_count)s)::int]
            ELSE (%(managers)s::int[])[1 + floor(random() * %(manager_count)s)::int] END,
       waste_reason,
       CASE kind WHEN 'adjustment' THEN 'Unit broken or found'
                 WHEN 'count' THEN 'Stock count'
                 WHEN 'return' THEN 'Damaged in transit' ELSE '' END,
       CASE WHEN kind = 'consumption' THEN 'session ' || (1000000 + floor(random() * 8999999))
            ELSE '' END
FROM (
    SELECT s.lot_id, s.kind, s.expiry, s.day,
           CASE s.kind
               WHEN 'consumption' THEN -1 - (random() < 0.3)::int - (random() < 0.05)::int
               WHEN 'waste' THEN -1 - (random() < 0.2)::int
               WHEN 'return' THEN -2 - floor(random() * 9)
               -- corrections go either way, more often down than up
               ELSE (CASE WHEN random() < 0.3 THEN 1 ELSE -1 END)
                    * (1 + (s.kind = 'count' AND random() < 0.3)::int)
           END::numeric AS quantity,
           CASE WHEN s.kind <> 'waste' THEN ''
                WHEN s.status = 'recalled' AND s.reason_draw < 0.5 THEN 'recalled'
                WHEN s.reason_draw < 0.15 AND s.expiry < %(last_day)s::date - 1 THEN 'expired'
                WHEN s.reason_draw < 0.45 THEN 'damaged'
                WHEN s.reason_draw < 0.9 THEN 'opened_unused'
                ELSE 'cold_chain' END AS waste_reason
    FROM (
        SELECT b.lot_id, b.expiry, b.status, random() AS reason_draw,
               b.received + floor(random() * (b.window_end - b.received + 1))::int AS day,
               CASE WHEN kind_draw < 0.905 THEN 'consumption'
                    WHEN kind_draw < 0.945 THEN 'waste'
                    WHEN kind_draw < 0.965 THEN 'adjustment'
                    WHEN kind_draw < 0.995 THEN 'count'
                    ELSE 'return' END AS kind
        FROM bench_lot AS b,
             LATERAL (SELECT random() AS kind_draw FROM generate_series(1, b.movement_count)) AS g
    ) AS s
) AS m;

-- One receipt per lot, at 8:00 on the day it was received, before anything else on the lot:
-- enough to leave the lot's planned leftover at the end, and never to let its running balance
-- drop below zero (a correction upwards late in a lot's life can leave it a unit or two more).
INSERT INTO bench_movement (lot_id, kind, quantity, occurred_at, actor_id, waste_reason,
                            reason, reference)
SELECT b.lot_id, 'receipt',
       greatest(b.leftover - coalesce(t.total, 0), -coalesce(t.lowest, 0), 1),
       (b.received + time '08:00') AT TIME ZONE %(tz)s,
       (%(managers)s::int[])[1 + floor(random() * %(manager_count)s)::int],
       '', '', 'delivery note ' || b.lot_id
FROM bench_lot AS b
LEFT JOIN (
    SELECT lot_id, sum(quantity) AS total, least(0, min(running)) AS lowest
    FROM (SELECT lot_id, quantity,
                 sum(quantity) OVER (PARTITION BY lot_id ORDER BY occurred_at, seq) AS running
          FROM bench_movement) AS r
    GROUP BY lot_id
) AS t ON t.lot_id = b.lot_id;

-- The ledger, in the order it would have been written (so ids and the table's physical order
-- follow time, as in a real database), at each lot's cost.
INSERT INTO inventory_stockmovement (lot_id, kind, quantity, unit_cost, occurred_at, actor_id,
    waste_reason, reason, reference, reverses_id)
SELECT m.lot_id, m.kind, m.quantity, b.unit_cost, m.occurred_at, m.actor_id, m.waste_reason,
       m.reason, m.reference, NULL
FROM bench_movement AS m JOIN bench_lot AS b ON b.lot_id = m.lot_id
ORDER BY m.occurred_at, m.seq;
"""

# What the services keep in step with the ledger, derived from it in one pass each.
FILL_DERIVED = """
UPDATE inventory_lot AS l SET quantity_on_hand = t.total
FROM (SELECT lot_id, sum(quantity) AS total FROM inventory_stockmovement GROUP BY lot_id) AS t
WHERE t.lot_id = l.id;

INSERT INTO inventory_stockday (day, lot_id, product_id, kind, actor_id, waste_reason, quantity,
                                value, movements)
SELECT (m.occurred_at AT TIME ZONE %(tz)s)::date, m.lot_id, l.product_id, m.kind, m.actor_id,
       m.waste_reason, sum(m.quantity), sum(m.quantity * m.unit_cost), count(*)
FROM inventory_stockmovement AS m JOIN inventory_lot AS l ON l.id = m.lot_id
GROUP BY 1, 2, 3, 4, 5, 6
-- the services add a day's rows on that day
ORDER BY 1;

INSERT INTO inventory_stockmonth (month, product_id, kind, actor_id, waste_reason, quantity,
                                  value, movements)
SELECT date_trunc('month', d.day)::date, d.product_id, d.kind, d.actor_id, d.waste_reason,
       sum(d.quantity), sum(d.value), sum(d.movements)
FROM inventory_stockday AS d
GROUP BY 1, 2, 3, 4, 5;

-- Reorder levels around what each product has usable today, so that some fifth of the
-- products show on the low-stock report.
UPDATE inventory_product AS p
SET reorder_level = round(greatest(coalesce(u.usable, 0), 10) * (0.2 + random()))
FROM (SELECT product_id,
             sum(quantity_on_hand) FILTER (WHERE status = 'available'
                                           AND expiry_date >= %(today)s) AS usable
      FROM inventory_lot GROUP BY product_id) AS u
WHERE u.product_id = p.id;
"""


def acting_users() -> tuple[list[int], list[int]]:
    """The practitioners' and managers' ids (created on first use; they are kept between
    runs: only the inventory tables are emptied)."""
    User = get_user_model()

    def user(username: str) -> int:
        return User.objects.get_or_create(username=username, defaults={"is_active": True})[0].pk

    return (
        [user(f"bench_practitioner_{i}") for i in range(1, PRACTITIONERS + 1)],
        [user(f"bench_manager_{i}") for i in range(1, MANAGERS + 1)],
    )


def tables_to_empty(cursor) -> list[str]:
    """The inventory tables, and the tables of other apps that point at them (a session's
    products point at lots and movements) if those are empty. No TRUNCATE ... CASCADE: it
    would empty whatever points at them, however far, without a word."""
    tables = list(INVENTORY_TABLES)
    while True:
        cursor.execute(
            """SELECT DISTINCT conrelid::regclass::text FROM pg_constraint
               WHERE contype = 'f' AND confrelid = ANY(%s::regclass[])
                 AND NOT conrelid = ANY(%s::regclass[])""",
            [tables, tables],
        )
        pointing = [row[0] for row in cursor.fetchall()]
        if not pointing:
            return tables
        for table in pointing:
            cursor.execute(f"SELECT EXISTS (SELECT FROM {table})")
            if cursor.fetchone()[0]:
                sys.exit(f"{table} has rows that point at the inventory: empty it first.")
        tables += pointing


def run_sql(cursor, script: str, params: dict) -> None:
    """Runs a script of several statements, one at a time (psycopg sends one statement with
    parameters per execute)."""
    for statement in script.split(";\n"):
        if statement.strip():
            cursor.execute(statement, params)


def fill(args, today: date) -> float:
    practitioners, managers = acting_users()
    categories = list(CATEGORY_SHAPE)
    params = {
        "products": args.products,
        "lots": args.lots,
        "others": args.movements - args.lots,  # every lot has one receipt
        "categories": len(categories),
        "codes": [c.value for c in categories],
        "units": [CATEGORY_SHAPE[c][0] for c in categories],
        "storages": [CATEGORY_SHAPE[c][1] for c in categories],
        "cost_low": [float(CATEGORY_SHAPE[c][2]) for c in categories],
        "cost_high": [float(CATEGORY_SHAPE[c][3]) for c in categories],
        "busy": [float(CATEGORY_SHAPE[c][4]) for c in categories],
        "first_day": today - timedelta(days=HISTORY_DAYS),
        # the newest lot arrives 11 days before the last day of movements (yesterday)
        "span": HISTORY_DAYS - 11,
        "last_day": today - timedelta(days=1),
        "today": today,
        "tz": settings.TIME_ZONE,
        "practitioners": practitioners,
        "practitioner_count": len(practitioners),
        "managers": managers,
        "manager_count": len(managers),
    }
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        # Sorting and hashing millions of rows in memory rather than in temporary files; for
        # this transaction only.
        cursor.execute("SET LOCAL work_mem = '512MB'")
        cursor.execute("SELECT setseed(%s)", [args.seed])
        # TRUNCATE fires no row trigger, so the ledger's append-only trigger does not object.
        cursor.execute(f"TRUNCATE {', '.join(tables_to_empty(cursor))} RESTART IDENTITY")
        for name, script in [
            ("products", FILL_PRODUCTS),
            ("lots", FILL_LOTS),
            ("movements", FILL_MOVEMENTS),
            ("lot quantities, daily rollup, reorder levels", FILL_DERIVED),
        ]:
            step = time.perf_counter()
            run_sql(cursor, script, params)
            print(f"  {name}: {time.perf_counter() - step:.1f} s", flush=True)
        step = time.perf_counter()
    # The commit runs the deferred foreign-key checks of every row.
    print(f"  commit (deferred foreign-key checks): {time.perf_counter() - step:.1f} s")
    step = time.perf_counter()
    # VACUUM as well as ANALYZE: it sets the visibility map and hint bits that autovacuum would
    # have set long ago on a real ledger (index-only scans rely on them), and it keeps
    # autovacuum from starting on the fresh tables in the middle of the measurements.
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM (ANALYZE) inventory_stockmovement, inventory_stockday, inventory_stockmonth, "
            "inventory_lot, inventory_product, inventory_supplier"
        )
    print(f"  vacuum, analyze: {time.perf_counter() - step:.1f} s")
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# Checks of the data
# ---------------------------------------------------------------------------------------------

# Each counts the rows that break one invariant; all must be zero.
INVARIANTS = {
    "movements at a cost other than their lot's": """
        SELECT count(*) FROM inventory_stockmovement AS m
        JOIN inventory_lot AS l ON l.id = m.lot_id WHERE m.unit_cost <> l.unit_cost""",
    "lots whose running balance goes below zero": """
        SELECT count(DISTINCT lot_id) FROM (
            SELECT lot_id,
                   sum(quantity) OVER (PARTITION BY lot_id ORDER BY occurred_at, id) AS balance
            FROM inventory_stockmovement) AS r
        WHERE balance < 0""",
    "lots whose first movement is not a receipt": """
        SELECT count(*) FROM (
            SELECT DISTINCT ON (lot_id) lot_id, kind FROM inventory_stockmovement
            ORDER BY lot_id, occurred_at, id) AS f
        WHERE kind <> 'receipt'""",
    "lots without movements": """
        SELECT count(*) FROM inventory_lot AS l WHERE NOT EXISTS (
            SELECT FROM inventory_stockmovement AS m WHERE m.lot_id = l.id)""",
}


def verify() -> None:
    """The app's own check (what `manage.py verify_stock_ledger` runs), then the invariants it
    does not cover. Stops the run if anything is off."""
    started = time.perf_counter()
    found = reports.ledger_discrepancies()
    if found:
        for lot in found[:10]:
            print(
                f"  lot #{lot.lot_id}: on hand {lot.on_hand}, ledger {lot.ledger}, "
                f"rollup {lot.rollup}"
            )
        sys.exit(f"verify_stock_ledger: {len(found)} lot(s) differ from the ledger")
    rows = reports.month_discrepancies() or reports.rollup_discrepancies(limit=10)
    if rows:
        for row in rows:
            print(f"  {row}")
        sys.exit("verify_stock_ledger: the rollups differ from what they sum up")
    broken = []
    with connection.cursor() as cursor:
        for name, sql in INVARIANTS.items():
            cursor.execute(sql, {"tz": settings.TIME_ZONE} if "%(tz)s" in sql else None)
            count = cursor.fetchone()[0]
            if count:
                broken.append(f"{count} {name}")
    if broken:
        sys.exit("The data breaks invariants: " + "; ".join(broken))
    print(
        f"  verify_stock_ledger's checks and {len(INVARIANTS)} further ones: all agree "
        f"({time.perf_counter() - started:.1f} s)"
    )


def describe_data() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT (SELECT count(*) FROM inventory_product),
                   (SELECT count(*) FROM inventory_lot),
                   (SELECT count(*) FROM inventory_lot WHERE quantity_on_hand > 0),
                   (SELECT count(*) FROM inventory_lot WHERE status <> 'available'),
                   (SELECT count(*) FROM inventory_stockmovement),
                   (SELECT count(*) FROM inventory_stockday),
                   (SELECT min(occurred_at)::date FROM inventory_stockmovement),
                   (SELECT max(occurred_at)::date FROM inventory_stockmovement),
                   (SELECT count(DISTINCT actor_id) FROM inventory_stockday),
                   pg_size_pretty(pg_total_relation_size('inventory_stockmovement')),
                   pg_size_pretty(pg_total_relation_size('inventory_stockday'))""")
        row = cursor.fetchone()
        cursor.execute("""
            SELECT kind, count(*) FROM inventory_stockmovement GROUP BY kind ORDER BY 2 DESC""")
        kinds = cursor.fetchall()
        cursor.execute("""
            SELECT lot_id, sum(movements) FROM inventory_stockday
            GROUP BY lot_id ORDER BY 2 DESC, 1 LIMIT 1""")
        busy = cursor.fetchone()
    keys = [
        "products",
        "lots",
        "lots_on_shelf",
        "lots_held",
        "movements",
        "stock_days",
        "first_day",
        "last_day",
        "actors",
        "ledger_size",
        "rollup_size",
    ]
    data = dict(zip(keys, row, strict=True))
    data["kinds"] = kinds
    data["busy_lot"], data["busy_lot_movements"] = busy if busy else (None, 0)
    return data


# ---------------------------------------------------------------------------------------------
# The hand-written queries: the same result as each report, as one query each
# ---------------------------------------------------------------------------------------------

# The on-hand page: every product's totals (the page's grand total needs all of them), and the
# lots on the shelf of the page's products. The CSV export is the same without the LIMIT.
ON_HAND_SQL = """
WITH stock AS (
    SELECT p.id, p.name, p.category, p.stock_unit, p.reorder_level,
           coalesce(sum(l.quantity_on_hand), 0) AS on_hand,
           coalesce(sum(l.quantity_on_hand) FILTER (WHERE l.status = 'available'
                                                    AND l.expiry_date >= %(today)s), 0) AS usable,
           coalesce(sum(l.quantity_on_hand * l.unit_cost), 0) AS value
    FROM inventory_product AS p
    LEFT JOIN inventory_lot AS l ON l.product_id = p.id AND l.quantity_on_hand > 0
    GROUP BY p.id
), page AS (
    SELECT *, sum(value) OVER () AS total_value FROM stock ORDER BY name {limit}
)
SELECT page.*, l.id, l.lot_number, l.expiry_date, l.status, l.quantity_on_hand, l.unit_cost
FROM page LEFT JOIN inventory_lot AS l ON l.product_id = page.id AND l.quantity_on_hand > 0
ORDER BY page.name, l.expiry_date, l.id
"""

LOW_STOCK_SQL = """
SELECT p.id, p.name, p.category, p.stock_unit, p.reorder_level,
       coalesce(sum(l.quantity_on_hand), 0) AS on_hand,
       coalesce(sum(l.quantity_on_hand) FILTER (WHERE l.status = 'available'
                                                AND l.expiry_date >= %(today)s), 0) AS usable
FROM inventory_product AS p
LEFT JOIN inventory_lot AS l ON l.product_id = p.id AND l.quantity_on_hand > 0
WHERE p.active
GROUP BY p.id
HAVING coalesce(sum(l.quantity_on_hand) FILTER (WHERE l.status = 'available'
                                                AND l.expiry_date >= %(today)s), 0)
       <= p.reorder_level
ORDER BY p.name
"""

EXPIRING_SQL = """
SELECT l.id, p.name, p.category, p.stock_unit, l.lot_number, l.expiry_date, l.status,
       l.quantity_on_hand, l.unit_cost
FROM inventory_lot AS l JOIN inventory_product AS p ON p.id = l.product_id
WHERE l.quantity_on_hand > 0 AND l.expiry_date <= %(until)s
ORDER BY l.expiry_date, p.name, l.id
"""

# Flows. Over the ledger, a day is a day of the clinic's calendar: the period's bounds are
# passed as the instants its first day starts and the day after its last starts, which the
# index on occurred_at can serve. Each query aggregates per lot (or user) first and joins the
# names to the few thousand groups rather than to every movement.
CONSUMPTION_SQL = {
    ("product", "ledger"): """
        SELECT g.period, p.id, p.name, -sum(g.quantity), -sum(g.value)
        FROM (SELECT date_trunc(%(period)s, m.occurred_at AT TIME ZONE %(tz)s)::date AS period,
                     m.lot_id, sum(m.quantity) AS quantity,
                     sum(m.quantity * m.unit_cost) AS value
              FROM inventory_stockmovement AS m
              WHERE m.kind = 'consumption'
                AND m.occurred_at >= %(start)s AND m.occurred_at < %(end)s
              GROUP BY 1, 2) AS g
        JOIN inventory_lot AS l ON l.id = g.lot_id
        JOIN inventory_product AS p ON p.id = l.product_id
        GROUP BY g.period, p.id, p.name
        ORDER BY g.period, p.name""",
    ("product", "rollup"): """
        SELECT g.period, p.id, p.name, -sum(g.quantity), -sum(g.value)
        FROM (SELECT date_trunc(%(period)s, d.day)::date AS period, d.lot_id,
                     sum(d.quantity) AS quantity, sum(d.value) AS value
              FROM inventory_stockday AS d
              WHERE d.kind = 'consumption' AND d.day BETWEEN %(date_from)s AND %(date_to)s
              GROUP BY 1, 2) AS g
        JOIN inventory_lot AS l ON l.id = g.lot_id
        JOIN inventory_product AS p ON p.id = l.product_id
        GROUP BY g.period, p.id, p.name
        ORDER BY g.period, p.name""",
    ("user", "ledger"): """
        SELECT g.period, u.id, u.username, -g.quantity, -g.value
        FROM (SELECT date_trunc(%(period)s, m.occurred_at AT TIME ZONE %(tz)s)::date AS period,
                     m.actor_id, sum(m.quantity) AS quantity,
                     sum(m.quantity * m.unit_cost) AS value
              FROM inventory_stockmovement AS m
              WHERE m.kind = 'consumption'
                AND m.occurred_at >= %(start)s AND m.occurred_at < %(end)s
              GROUP BY 1, 2) AS g
        JOIN auth_user AS u ON u.id = g.actor_id
        ORDER BY g.period, u.username""",
    ("user", "rollup"): """
        SELECT g.period, u.id, u.username, -g.quantity, -g.value
        FROM (SELECT date_trunc(%(period)s, d.day)::date AS period, d.actor_id,
                     sum(d.quantity) AS quantity, sum(d.value) AS value
              FROM inventory_stockday AS d
              WHERE d.kind = 'consumption' AND d.day BETWEEN %(date_from)s AND %(date_to)s
              GROUP BY 1, 2) AS g
        JOIN auth_user AS u ON u.id = g.actor_id
        ORDER BY g.period, u.username""",
}

# Over the two rollups the reports read: whole months from inventory_stockmonth, the days left
# at the period's edges from inventory_stockday.
MONTHLY_EDGES = """
    (d.day BETWEEN %(edge1_from)s AND %(edge1_to)s OR d.day BETWEEN %(edge2_from)s AND %(edge2_to)s)
"""
# Each edge lies within one month, which the query is given: grouping the edge days under a
# constant month is cheaper than truncating every day's date.
CONSUMPTION_SQL["product", "monthly"] = """
    SELECT g.period, p.id, p.name, g.quantity, g.value
    FROM (SELECT m.month AS period, m.product_id, -sum(m.quantity) AS quantity,
                 -sum(m.value) AS value
          FROM inventory_stockmonth AS m
          WHERE m.kind = 'consumption' AND m.month >= %(month_from)s AND m.month < %(month_to)s
          GROUP BY 1, 2
          UNION ALL
          SELECT %(edge1_month)s::date, d.product_id, -sum(d.quantity), -sum(d.value)
          FROM inventory_stockday AS d
          WHERE d.kind = 'consumption' AND d.day BETWEEN %(edge1_from)s AND %(edge1_to)s
          GROUP BY 2
          UNION ALL
          SELECT %(edge2_month)s::date, d.product_id, -sum(d.quantity), -sum(d.value)
          FROM inventory_stockday AS d
          WHERE d.kind = 'consumption' AND d.day BETWEEN %(edge2_from)s AND %(edge2_to)s
          GROUP BY 2) AS g
    JOIN inventory_product AS p ON p.id = g.product_id
    ORDER BY g.period, p.name"""

WASTE_SQL = {
    "monthly": f"""
        SELECT kind, waste_reason, -sum(quantity), -sum(value)
        FROM (SELECT kind, waste_reason, quantity, value FROM inventory_stockmonth
              WHERE kind IN ('waste', 'consumption')
                AND month >= %(month_from)s AND month < %(month_to)s
              UNION ALL
              SELECT d.kind, d.waste_reason, d.quantity, d.value FROM inventory_stockday AS d
              WHERE d.kind IN ('waste', 'consumption') AND {MONTHLY_EDGES}) AS f
        GROUP BY kind, waste_reason ORDER BY kind, waste_reason""",
    "ledger": """
        SELECT kind, waste_reason, -sum(quantity), -sum(quantity * unit_cost)
        FROM inventory_stockmovement
        WHERE kind IN ('waste', 'consumption')
          AND occurred_at >= %(start)s AND occurred_at < %(end)s
        GROUP BY kind, waste_reason ORDER BY kind, waste_reason""",
    "rollup": """
        SELECT kind, waste_reason, -sum(quantity), -sum(value)
        FROM inventory_stockday
        WHERE kind IN ('waste', 'consumption') AND day BETWEEN %(date_from)s AND %(date_to)s
        GROUP BY kind, waste_reason ORDER BY kind, waste_reason""",
}

VALUATION_TODAY_SQL = """
SELECT p.category, count(*), sum(l.quantity_on_hand), sum(l.quantity_on_hand * l.unit_cost)
FROM inventory_lot AS l JOIN inventory_product AS p ON p.id = l.product_id
WHERE l.quantity_on_hand > 0
GROUP BY p.category ORDER BY p.category
"""

# As of an earlier day: each lot's balance from its flows up to the end of that day, the lots
# with stock summed per category.
VALUATION_AS_OF_SQL = {
    "monthly": """
        SELECT p.category, sum(f.quantity), sum(f.value)
        FROM (SELECT product_id, quantity, value FROM inventory_stockmonth
              WHERE month < %(month_of)s
              UNION ALL
              SELECT d.product_id, d.quantity, d.value
              FROM inventory_stockday AS d
              WHERE d.day >= %(month_of)s AND d.day <= %(date_to)s) AS f
        JOIN inventory_product AS p ON p.id = f.product_id
        GROUP BY p.category HAVING sum(f.quantity) > 0 ORDER BY p.category""",
    "ledger": """
        SELECT p.category, count(*), sum(b.quantity), sum(b.value)
        FROM (SELECT lot_id, sum(quantity) AS quantity, sum(quantity * unit_cost) AS value
              FROM inventory_stockmovement WHERE occurred_at < %(end)s
              GROUP BY lot_id HAVING sum(quantity) > 0) AS b
        JOIN inventory_lot AS l ON l.id = b.lot_id
        JOIN inventory_product AS p ON p.id = l.product_id
        GROUP BY p.category ORDER BY p.category""",
    "rollup": """
        SELECT p.category, count(*), sum(b.quantity), sum(b.value)
        FROM (SELECT lot_id, sum(quantity) AS quantity, sum(value) AS value
              FROM inventory_stockday WHERE day <= %(date_to)s
              GROUP BY lot_id HAVING sum(quantity) > 0) AS b
        JOIN inventory_lot AS l ON l.id = b.lot_id
        JOIN inventory_product AS p ON p.id = l.product_id
        GROUP BY p.category ORDER BY p.category""",
}

# The balance is a running sum over all the lot's movements, taken before the period filter so
# that it counts what came before the period.
LOT_LEDGER_SQL = """
SELECT * FROM (
    SELECT m.id, m.occurred_at, m.kind, m.quantity, m.waste_reason, m.reason, m.reference,
           m.reverses_id, u.username, u.first_name, u.last_name,
           l.lot_number, l.expiry_date, l.status, l.quantity_on_hand, p.name, s.name,
           sum(m.quantity) OVER (ORDER BY m.occurred_at, m.id) AS balance
    FROM inventory_stockmovement AS m
    JOIN auth_user AS u ON u.id = m.actor_id
    JOIN inventory_lot AS l ON l.id = m.lot_id
    JOIN inventory_product AS p ON p.id = l.product_id
    LEFT JOIN inventory_supplier AS s ON s.id = l.supplier_id
    WHERE m.lot_id = %(lot)s
) AS ledger
WHERE occurred_at >= %(start)s AND occurred_at < %(end)s
ORDER BY occurred_at, id
"""


def day_start(day: date) -> datetime:
    """The instant the clinic's `day` begins."""
    return timezone.make_aware(datetime.combine(day, clock.min))


def fetch(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or None)
        return cursor.fetchall()


# ---------------------------------------------------------------------------------------------
# The reports and how each is measured
# ---------------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    url: str
    # the hand-written queries, by the tables they read: "ledger" (the raw tables), "rollup"
    sql: dict[str, tuple[str, dict]]
    # compares each hand-written result with the report function's own; returns a problem
    check: Callable[[dict[str, list[tuple]]], str | None] | None = None
    # not a report page proper (a CSV export, the chart): left out of "the slowest report"
    extra: bool = False


@dataclass
class Result:
    case: Case
    page_ms: list[float] = field(default_factory=list)
    page_sql_ms: list[float] = field(default_factory=list)
    queries: set[int] = field(default_factory=set)
    sql_ms: dict[str, list[float]] = field(default_factory=dict)
    slowest_query: str = ""
    rows: int | None = None  # what the hand-written query returns: the size of the report
    error: str = ""
    agreement: str = ""


def _same(rows_a, rows_b) -> bool:
    """Rows equal value by value (Decimal('1.000') == Decimal('1'))."""
    return len(rows_a) == len(rows_b) and all(
        tuple(a) == tuple(b) for a, b in zip(rows_a, rows_b, strict=True)
    )


def monthly_params(date_from: date, date_to: date) -> dict:
    """The whole months and the edge days of a period, as the reports cut it."""
    span = reports.Span.of(date_from, date_to)
    never = date(1900, 1, 1)
    edges = span.edge_months()
    if len(edges) > 2:
        raise ValueError("The hand-written queries take two edges at most.")
    edges += [(never, never, never)] * (2 - len(edges))
    months = span.months or (never, never)
    return {
        "month_from": months[0],
        "month_to": months[1],
        "edge1_month": edges[0][0],
        "edge1_from": edges[0][1],
        "edge1_to": edges[0][2],
        "edge2_month": edges[1][0],
        "edge2_from": edges[1][1],
        "edge2_to": edges[1][2],
    }


def cases(today: date, busy_lot: int | None) -> list[Case]:
    year_ago = today - timedelta(days=365)
    quarter_ago = today - timedelta(days=90)
    tz = settings.TIME_ZONE
    year = {
        "date_from": year_ago,
        "date_to": today,
        "start": day_start(year_ago),
        "end": day_start(today + timedelta(days=1)),
        "tz": tz,
    }
    quarter = {**year, "date_from": quarter_ago, "start": day_start(quarter_ago)}
    year.update(monthly_params(year_ago, today))
    until = today + timedelta(days=90)

    def on_hand_check(results):
        report = reports.on_hand(today=today)
        ours = {row[0]: row[5:8] for row in results["ledger"]}
        theirs = {p.product_id: (p.on_hand, p.usable, p.value) for p in report}
        page = {k: v for k, v in theirs.items() if k in ours}
        return None if page == ours else "on_hand() differs from the SQL"

    def low_check(results):
        report = reports.low_stock(today=today)
        theirs = [(p.product_id, p.on_hand, p.usable) for p in report]
        ours = [(row[0], row[5], row[6]) for row in results["ledger"]]
        return None if _same(theirs, ours) else "low_stock() differs from the SQL"

    def expiring_check(results):
        report = reports.expiring(today=today, until=until)
        theirs = [(x.lot_id, x.quantity) for x in report]
        ours = [(row[0], row[7]) for row in results["ledger"]]
        return None if _same(theirs, ours) else "expiring() differs from the SQL"

    def flow_check(group, period, params):
        def check(results):
            report = reports.consumption(
                date_from=params["date_from"], date_to=params["date_to"], group=group, period=period
            )
            theirs = sorted((r.period, r.key, r.label, r.quantity, r.value) for r in report)
            bad = [
                name
                for name, rows in results.items()
                if not _same(theirs, sorted(tuple(row) for row in rows))
            ]
            return f"consumption() differs from the SQL over {', '.join(bad)}" if bad else None

        return check

    def waste_check(results):
        report = reports.waste(date_from=year_ago, date_to=today)
        theirs = [("consumption", "", report.consumption_quantity, report.consumption_value)]
        theirs += [("waste", reason, q, v) for reason, q, v in report.by_reason]
        bad = [name for name, rows in results.items() if not _same(theirs, rows)]
        return f"waste() differs from the SQL over {', '.join(bad)}" if bad else None

    def valuation_check(as_of):
        def check(results):
            report = reports.valuation(as_of=as_of, today=today)
            theirs = [(r.category, r.quantity, r.value) for r in report]
            # The number of lots is known today only; compare what every query returns.
            bad = [
                name
                for name, rows in results.items()
                if not _same(theirs, [(row[0], row[-2], row[-1]) for row in rows])
            ]
            return f"valuation() differs from the SQL over {', '.join(bad)}" if bad else None

        return check

    def ledger_check(results):
        lot = Lot.objects.get(pk=busy_lot)
        theirs = [
            (m.id, m.balance)
            for m in reports.lot_ledger(
                lot=lot, date_from=today - timedelta(days=3650), date_to=today
            )
        ]
        ours = [(row[0], row[-1]) for row in results["ledger"]]
        return None if _same(theirs, ours) else "lot_ledger() differs from the SQL"

    product_month = {**year, "period": "month"}
    user_week = {**quarter, "period": "week"}
    by_product = Case(
        "consumption product/month 365 d",
        f"/reports/stock/consumption/?date_from={year_ago}&date_to={today}"
        "&group=product&period=month",
        {
            tables: (CONSUMPTION_SQL["product", tables], product_month)
            for tables in ("ledger", "rollup", "monthly")
        },
        flow_check("product", "month", product_month),
    )
    chosen = [
        Case(
            "on hand",
            "/reports/stock/on-hand/",
            {"ledger": (ON_HAND_SQL.format(limit=f"LIMIT {PRODUCTS_PER_PAGE}"), {"today": today})},
            on_hand_check,
        ),
        Case(
            "low stock",
            "/reports/stock/low/",
            {"ledger": (LOW_STOCK_SQL, {"today": today})},
            low_check,
        ),
        Case(
            "expiring 90 d",
            "/reports/stock/expiring/?within=90",
            {"ledger": (EXPIRING_SQL, {"until": until})},
            expiring_check,
        ),
        by_product,
        Case(
            "consumption user/week 90 d",
            f"/reports/stock/consumption/?date_from={quarter_ago}&date_to={today}"
            "&group=user&period=week",
            {
                tables: (CONSUMPTION_SQL["user", tables], user_week)
                for tables in ("ledger", "rollup")
            },
            flow_check("user", "week", user_week),
        ),
        Case(
            "waste 365 d",
            f"/reports/stock/waste/?date_from={year_ago}&date_to={today}",
            {tables: (WASTE_SQL[tables], year) for tables in ("ledger", "rollup", "monthly")},
            waste_check,
        ),
        Case(
            "valuation today",
            "/reports/stock/valuation/",
            {"ledger": (VALUATION_TODAY_SQL, {})},
            valuation_check(today),
        ),
        Case(
            "valuation a year ago",
            f"/reports/stock/valuation/?date_to={year_ago}",
            {
                tables: (
                    VALUATION_AS_OF_SQL[tables],
                    {
                        "date_to": year_ago,
                        "end": day_start(year_ago + timedelta(days=1)),
                        "month_of": year_ago.replace(day=1),
                    },
                )
                for tables in ("ledger", "rollup", "monthly")
            },
            valuation_check(year_ago),
        ),
    ]
    if busy_lot is not None:
        ledger_window = {
            "lot": busy_lot,
            "start": day_start(today - timedelta(days=3650)),
            "end": day_start(today + timedelta(days=1)),
        }
        chosen.append(
            Case(
                "ledger of the busiest lot",
                f"/reports/stock/lots/{busy_lot}/",
                {"ledger": (LOT_LEDGER_SQL, ledger_window)},
                ledger_check,
            )
        )
    # The CSV exports, the consumption chart the consumption page's <img> asks for, and the
    # reports' index page as the cost of any page (session, user, permissions, base template).
    chosen += [
        Case(
            "on hand, CSV (all lots)",
            "/reports/stock/on-hand/?format=csv",
            {"ledger": (ON_HAND_SQL.format(limit=""), {"today": today})},
            extra=True,
        ),
        Case(
            "consumption product/month, CSV",
            by_product.url + "&format=csv",
            by_product.sql,
            extra=True,
        ),
        Case(
            "consumption chart (SVG)",
            by_product.url.replace("consumption/?", "consumption/chart.svg?"),
            by_product.sql,
            extra=True,
        ),
        Case("(the reports' index page)", "/reports/", {}, extra=True),
    ]
    return chosen


class QueryTimer:
    """An execute wrapper that times each query to the microsecond (the log that
    CaptureQueriesContext reads rounds to the millisecond)."""

    def __init__(self):
        self.durations: list[float] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.durations.append(time.perf_counter() - started)


def measure(case: Case, client: Client, args) -> Result:
    """Times the page, then each hand-written query, each after its own warm-up. (Not in turn
    run after run: with PostgreSQL's default 128 MB of shared buffers, a query over the 400 MB
    ledger would evict the rollup's pages just before the rollup query ran. --interleave runs
    in turn only the page and the query over the tables it reads.)"""
    result = Result(case)
    try:
        response = client.get(case.url)
        if response.status_code != 200:
            raise AssertionError(f"status {response.status_code}")
    except Exception as error:  # noqa: BLE001 - a broken page is reported, the others still run
        result.error = f"{type(error).__name__}: {error}"

    def page(record: bool) -> None:
        timer = QueryTimer()
        with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timer):
            started = time.perf_counter()
            client.get(case.url)
            elapsed = (time.perf_counter() - started) * 1000
        if record:
            result.page_ms.append(elapsed)
            result.queries.add(len(captured.captured_queries))
            result.page_sql_ms.append(sum(timer.durations) * 1000)
            # the captured text has the parameters in place, ready for EXPLAIN
            slowest = max(range(len(timer.durations)), key=timer.durations.__getitem__)
            result.slowest_query = captured.captured_queries[slowest]["sql"]

    def query(tables: str, record: bool) -> None:
        sql, params = case.sql[tables]
        started = time.perf_counter()
        result.rows = len(fetch(sql, params))
        if record:
            result.sql_ms.setdefault(tables, []).append((time.perf_counter() - started) * 1000)

    # With --interleave, the query that reads what the page reads (the rollups, or the lots for
    # the snapshots) runs in turn with the page, so that a busy machine slows both alike; the
    # ledger queries still run apart.
    paired = None
    if args.interleave and not result.error:
        paired = next((t for t in ("monthly", "rollup", "ledger") if t in case.sql), None)
    if not result.error:
        for run in range(args.warmup + args.runs):
            page(record=run >= args.warmup)
            if paired:
                query(paired, record=run >= args.warmup)
    for tables in case.sql:
        if tables == paired:
            continue
        for run in range(args.warmup + args.runs):
            query(tables, record=run >= args.warmup)

    if case.check:
        outputs = {tables: fetch(sql, params) for tables, (sql, params) in case.sql.items()}
        try:
            problem = case.check(outputs)
        except Exception as error:  # noqa: BLE001 - reported beside the figures
            problem = f"report function failed: {type(error).__name__}: {error}"
        result.agreement = problem or "agrees"
    return result


def explain(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS OFF) {sql}")
        return [row[0] for row in cursor.fetchall()]


def print_table(results: list[Result]) -> None:
    """One line a report. Columns: rows the report holds; the page's median and 95th
    percentile; queries per request; of the page's median, the time in its SQL and the rest
    (middleware, ORM, template); the hand-written queries' medians; the page's median over the
    faster of them (the ratio the target is about); the same for the page's SQL alone; the
    targets missed."""
    header = (
        f"{'report':<34} {'rows':>5} {'page med':>8} {'p95':>7} {'queries':>7} {'its SQL':>7} "
        f"{'rest':>6} {'SQL ledger':>10} {'SQL day':>10} {'SQL month':>10} {'ratio':>6} "
        f"{'its SQL ratio':>13}  target "
        f"(< {TARGET_MEDIAN_MS} ms, ratio <= {TARGET_RATIO})"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        hand = {tables: statistics.median(r.sql_ms[tables]) for tables in r.sql_ms}
        best = min(hand.values(), default=None)
        sql_cells = " ".join(
            f"{hand[tables]:10.1f}" if tables in hand else f"{'-':>10}"
            for tables in ("ledger", "rollup", "monthly")
        )
        rows = f"{r.rows:5d}" if r.rows is not None else f"{'-':>5}"
        if r.error:
            print(
                f"{r.case.name:<34} {rows} {'FAILED':>8} {'':>30} {sql_cells} {'':>20}  {r.error}"
            )
            continue
        median = statistics.median(r.page_ms)
        rest = statistics.median(p - q for p, q in zip(r.page_ms, r.page_sql_ms, strict=True))
        ratio = median / best if best else None
        ratio_cell = f"{ratio:6.2f}" if ratio else f"{'-':>6}"
        own_sql = statistics.median(r.page_sql_ms)
        sql_ratio_cell = f"{own_sql / best:13.2f}" if best else f"{'-':>13}"
        misses = []
        if median >= TARGET_MEDIAN_MS:
            misses.append(f"{median - TARGET_MEDIAN_MS:+.0f} ms over")
        if ratio and ratio > TARGET_RATIO:
            misses.append(f"ratio {ratio:.1f}")
        queries = "/".join(str(q) for q in sorted(r.queries))  # one figure if it never varies
        print(
            f"{r.case.name:<34} {rows} {median:8.1f} {percentile(r.page_ms, 0.95):7.1f} "
            f"{queries:>7} {own_sql:7.1f} {rest:6.1f} {sql_cells} "
            f"{ratio_cell} {sql_ratio_cell}  "
            f"{'MISSED: ' + ', '.join(misses) if misses else 'ok'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--lots", type=int, default=20_000)
    parser.add_argument("--movements", type=int, default=2_000_000)
    parser.add_argument("--seed", type=float, default=0.42, help="setseed() for the fill")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the data already in the database, without filling it",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="fill even a database whose name does not contain 'bench'",
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="run each page in turn with its hand-written query over the same tables "
        "(steadier ratios on a shared machine)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print the whole plan of every report's slowest query",
    )
    args = parser.parse_args()

    if connection.vendor != "postgresql":
        sys.exit(
            f"This benchmark needs PostgreSQL (DATABASE_URL); the database is {connection.vendor}."
        )
    name = connection.settings_dict["NAME"]
    if not args.reuse and "bench" not in name and not args.force:
        sys.exit(
            f"Refusing to empty the inventory tables of {name!r}: its name does not "
            f"contain 'bench'. Pass --force if that is really what you want."
        )
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        sys.exit("The database has unapplied migrations: run manage.py migrate first.")
    if args.lots < args.products or args.movements < args.lots:
        sys.exit("Need at least one lot per product and one movement (the receipt) per lot.")
    # One connection for the whole run, as a worker keeps it between requests (CONN_MAX_AGE);
    # a reconnection in the middle of the measurements would only add noise.
    connection.settings_dict["CONN_MAX_AGE"] = None
    # The settings need DJANGO_DEBUG=1 to start without production secrets; the pages are
    # measured as production serves them.
    settings.DEBUG = False

    today = timezone.localdate()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    print(f"Database {name} on PostgreSQL {server}; {os.cpu_count()} CPUs; today {today}.")
    if args.reuse:
        print("Reusing the data in the database.")
    else:
        print(
            f"Filling: {args.products} products, {args.lots} lots, "
            f"{args.movements} movements over {HISTORY_DAYS} days...",
            flush=True,
        )
        elapsed = fill(args, today)
        print(f"Fill took {elapsed:.1f} s.")
        print("Checking the data...", flush=True)
        verify()
    data = describe_data()
    if not data["movements"]:
        sys.exit("The database holds no movement: run without --reuse first.")
    print(
        f"Data: {data['products']} products, {data['lots']} lots ({data['lots_on_shelf']} on "
        f"the shelf, {data['lots_held']} quarantined or recalled), {data['movements']} "
        f"movements from {data['first_day']} to {data['last_day']} by {data['actors']} users "
        f"({', '.join(f'{k} {n}' for k, n in data['kinds'])}), {data['stock_days']} "
        f"daily rollup rows ({data['movements'] / max(data['stock_days'], 1):.2f} movements "
        f"a row). Ledger {data['ledger_size']}, rollup {data['rollup_size']} with indexes."
    )
    print(f"Busiest lot: #{data['busy_lot']} with {data['busy_lot_movements']} movements.")

    viewer, _ = get_user_model().objects.get_or_create(username=VIEWER)
    user_set_roles(user=viewer, roles=[MANAGER])
    client = Client()
    client.force_login(viewer)

    print(
        f"\nMeasuring: {args.warmup} warm-up and {args.runs} measured requests or queries "
        f"each; times in ms.",
        flush=True,
    )
    results = []
    for case in cases(today, data["busy_lot"]):
        results.append(measure(case, client, args))
        print(f"  {case.name}: done", flush=True)
    print()
    # Other processes on the machine (a test run) slow the measurements down: say how busy it was.
    print(
        "Load average (1, 5, 15 min) after measuring: "
        + ", ".join(f"{load:.2f}" for load in os.getloadavg())
    )
    print_table(results)

    print("\nThe hand-written queries against the report functions:")
    for r in results:
        if r.agreement:
            print(f"  {r.case.name}: {r.agreement}")

    measured = [r for r in results if r.page_ms and not r.case.extra]
    if measured:
        slowest = max(measured, key=lambda r: statistics.median(r.page_ms))
        plan = explain(slowest.slowest_query)
        print(f"\nSlowest report: {slowest.case.name}. Its slowest query, EXPLAIN ANALYZE:")
        print(f"  {plan[0].strip()}")
        for line in plan:
            if line.startswith(("Planning Time", "Execution Time")):
                print(f"  {line}")
    if args.explain:
        for r in results:
            if r.slowest_query:
                print(f"\n=== {r.case.name}\n{r.slowest_query}\n")
                print("\n".join(explain(r.slowest_query)))


if __name__ == "__main__":
    main()
