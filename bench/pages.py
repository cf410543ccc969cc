"""Benchmark of the everyday pages at a clinic chain's size: for each page, the median and 95th
percentile of the server's time and its query count, beside one hand-written SQL query that
returns the same rows on the same database, and their ratio.

    DJANGO_DEBUG=1 DATABASE_URL=postgres://clinic:clinic@127.0.0.1:5432/clinic_scale \\
        .venv/bin/python bench/pages.py

Fill the database first with `manage.py seed_demo --scale large` (or medium). The script only
reads, except for two measurements that write inside a transaction it rolls back: completing a
session, and the reminder dispatcher's scan. Pages are requested with django.test.Client as
the role that uses them (the demo accounts), with DEBUG off and one database connection kept
for the whole run, like a worker keeps it. Targets (issue "Scale"): every page under 150 ms at
the 95th percentile, at most 12 queries, at most 2 times its hand-written SQL.
"""

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.measure import percentile  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--runs", type=int, default=15, help="measured requests per page")
parser.add_argument("--warmup", type=int, default=3, help="requests before measuring")
parser.add_argument("--force", action="store_true", help="run on a database without 'scale'")
args = parser.parse_args()

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

PAGE_TARGET_MS = 150
QUERY_TARGET = 12
RATIO_TARGET = 2.0


@dataclass
class Case:
    name: str
    user: str
    url: str = ""
    sql: str = ""
    params: list = field(default_factory=list)
    action: object = None  # a callable measured instead of a page
    explain: bool = False


@dataclass
class Result:
    case: Case
    ms: list[float] = field(default_factory=list)
    queries: set[int] = field(default_factory=set)
    sql_ms: list[float] = field(default_factory=list)
    rows: int | None = None
    error: str = ""
    plan: list[str] = field(default_factory=list)


def one(sql: str, params=()) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def pick() -> dict:
    """Real ids and search terms from the data: a patient with courses, a busy practitioner's
    day, a session on it, a lot that went into sessions."""
    today = timezone.localdate()
    patient = one(
        """SELECT p.id, p.family_name, p.given_name, p.mobile_phone, p.date_of_birth
             FROM patients_patient p JOIN treatments_course c ON c.patient_id = p.id
            WHERE p.mobile_phone <> '' ORDER BY p.id DESC LIMIT 1"""
    )
    day = one(
        """SELECT s.practitioner_id, (s.scheduled_start AT TIME ZONE %s)::date AS day, count(*)
             FROM treatments_session s
            WHERE s.scheduled_start >= now() - interval '30 days' AND s.scheduled_start < now()
            GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 1""",
        [settings.TIME_ZONE],
    )
    session = one(
        """SELECT id FROM treatments_session
            WHERE practitioner_id = %s AND (scheduled_start AT TIME ZONE %s)::date = %s
            ORDER BY scheduled_start LIMIT 1""",
        [day[0], settings.TIME_ZONE, day[1]],
    )
    lot = one(
        """SELECT lot_id, count(*) FROM treatments_sessionproduct
            GROUP BY lot_id ORDER BY 2 DESC LIMIT 1"""
    )
    return {
        "today": today,
        "patient_id": patient[0],
        "name": f"{patient[1].split()[0]} {patient[2].split()[0]}",
        "phone": patient[3],
        "dob": patient[4],
        "practitioner_id": day[0],
        "day": day[1],
        "day_sessions": day[2],
        "session_id": session[0],
        "lot_id": lot[0],
        "lot_lines": lot[1],
    }


PATIENT_PAGE_SQL = """
SELECT p.id, p.family_name, p.given_name, p.date_of_birth, p.mobile_phone,
       (SELECT max(taken_on) FROM patients_screening s WHERE s.patient_id = p.id),
       (SELECT string_agg(kind || ':' || coalesce(withdrawn_at::text, ''), ',')
          FROM patients_consent c WHERE c.patient_id = p.id)
  FROM patients_patient p
 {where}
 ORDER BY p.family_name, p.given_name, p.id
 LIMIT 50
"""


def cases(chosen: dict) -> list[Case]:
    from patients.models import name_key

    words = name_key(chosen["name"]).split()
    like = " AND ".join(["p.name_key LIKE %s"] * len(words))
    day, practitioner = chosen["day"], chosen["practitioner_id"]
    # The day as a range of times, which the (practitioner, scheduled_start) index serves.
    local_day = (
        f"s.scheduled_start >= (%s::date)::timestamp AT TIME ZONE '{settings.TIME_ZONE}' AND "
        f"s.scheduled_start < (%s::date + 1)::timestamp AT TIME ZONE '{settings.TIME_ZONE}'"
    )
    return [
        Case(
            "patient list, unfiltered",
            "reception",
            "/admin/patients/patient/",
            PATIENT_PAGE_SQL.format(where=""),
        ),
        Case(
            "patient list, searched by name",
            "reception",
            f"/admin/patients/patient/?q={chosen['name'].replace(' ', '+')}",
            PATIENT_PAGE_SQL.format(where=f"WHERE {like}"),
            [f"%{w}%" for w in words],
            explain=True,
        ),
        Case(
            "patient list, searched by phone",
            "reception",
            f"/admin/patients/patient/?q={chosen['phone'].replace('+', '%2B')}",
            PATIENT_PAGE_SQL.format(where="WHERE p.mobile_phone = %s"),
            [chosen["phone"]],
            explain=True,
        ),
        Case(
            "patient list, searched by date of birth",
            "reception",
            f"/admin/patients/patient/?q={chosen['dob']:%d/%m/%Y}",
            PATIENT_PAGE_SQL.format(where="WHERE p.date_of_birth = %s"),
            [chosen["dob"]],
            explain=True,
        ),
        Case(
            "patient page (safety, screenings, consents)",
            "dra.escoda",
            f"/practice/patients/{chosen['patient_id']}/",
            """SELECT p.*, c.kind, c.signed_at, c.withdrawn_at, s.taken_on
                 FROM patients_patient p
                 LEFT JOIN patients_consent c ON c.patient_id = p.id
                 LEFT JOIN LATERAL (SELECT taken_on FROM patients_screening
                                     WHERE patient_id = p.id ORDER BY taken_on DESC LIMIT 5) s
                        ON true
                WHERE p.id = %s""",
            [chosen["patient_id"]],
        ),
        Case(
            "patient's record in the admin (with courses)",
            "reception",
            f"/admin/patients/patient/{chosen['patient_id']}/change/",
            """SELECT p.*, c.id, c.status, s.id, s.scheduled_start
                 FROM patients_patient p
                 LEFT JOIN treatments_course c ON c.patient_id = p.id
                 LEFT JOIN treatments_session s ON s.course_id = c.id
                WHERE p.id = %s""",
            [chosen["patient_id"]],
        ),
        Case(
            "sessions list, one day and practitioner",
            "reception",
            f"/admin/treatments/session/?scheduled_start__day={day.day}"
            f"&scheduled_start__month={day.month}&scheduled_start__year={day.year}"
            f"&practitioner__id__exact={practitioner}",
            f"""SELECT s.id, s.scheduled_start, s.status, p.family_name, p.given_name, r.name
                  FROM treatments_session s
                  JOIN treatments_course c ON c.id = s.course_id
                  JOIN patients_patient p ON p.id = c.patient_id
                  JOIN treatments_room r ON r.id = s.room_id
                 WHERE s.practitioner_id = %s AND {local_day}
                 ORDER BY s.scheduled_start DESC LIMIT 100""",
            [practitioner, day, day],
        ),
        Case(
            "practitioner's day",
            "practitioner",
            f"/practice/?day={day:%Y-%m-%d}",
            f"""SELECT s.id, s.scheduled_start, s.status, s.number, p.id, p.family_name,
                       (SELECT max(taken_on) FROM patients_screening x WHERE x.patient_id = p.id)
                  FROM treatments_session s
                  JOIN treatments_course c ON c.id = s.course_id
                  JOIN patients_patient p ON p.id = c.patient_id
                 WHERE s.practitioner_id = %s AND {local_day}
                 ORDER BY s.scheduled_start""",
            [practitioner, day, day],
        ),
        Case(
            "session page",
            "practitioner",
            f"/practice/sessions/{chosen['session_id']}/",
            """SELECT s.*, p.*, sp.id, sp.quantity, l.lot_number
                 FROM treatments_session s
                 JOIN treatments_course c ON c.id = s.course_id
                 JOIN patients_patient p ON p.id = c.patient_id
                 LEFT JOIN treatments_sessionproduct sp ON sp.session_id = s.id
                 LEFT JOIN inventory_lot l ON l.id = sp.lot_id
                WHERE s.id = %s""",
            [chosen["session_id"]],
        ),
        Case(
            "recall list of the most used lot (first page)",
            "manager",
            f"/reports/stock/lots/{chosen['lot_id']}/recall/",
            """SELECT sp.id, s.scheduled_start, p.family_name, p.given_name, p.mobile_phone
                 FROM treatments_sessionproduct sp
                 JOIN treatments_session s ON s.id = sp.session_id
                 JOIN treatments_course c ON c.id = s.course_id
                 JOIN patients_patient p ON p.id = c.patient_id
                WHERE sp.lot_id = %s AND sp.voided_at IS NULL
                ORDER BY s.scheduled_start, sp.id
                LIMIT 100""",
            [chosen["lot_id"]],
        ),
        Case(
            "completing a session with three product lines",
            "",
            action=chosen["complete"],
        ),
        Case(
            "reminder dispatcher's scan (500 due)",
            "",
            action=dispatch_once,
            sql="""SELECT id, session_start FROM treatments_reminder
                    WHERE status = 'pending' AND due_at <= now()
                      AND (enqueued_at IS NULL OR enqueued_at <= now() - interval '5 minutes')
                    ORDER BY due_at, id LIMIT 500 FOR UPDATE SKIP LOCKED""",
        ),
    ]


RECORD = {
    "areas": ["full_face"],
    "technique": "nappage",
    "needle_gauge": 32,
    "needle_length_mm": Decimal("4"),
    "depth_mm": Decimal("1.5"),
    "aftercare_given": True,
    "pain_score": 2,
}


def completion(chosen: dict):
    """Completing a session that is due, with three product lines (three hyaluronic acid, vitamin
    and consumable products with stock), in a transaction rolled back each time."""
    from inventory.models import Lot, Product
    from patients.selectors import treatability
    from treatments.models import Session, SessionStatus
    from treatments.services import ProductLine, session_complete

    candidates = (
        Session.objects.filter(
            status__in=[SessionStatus.SCHEDULED, SessionStatus.CONFIRMED],
            scheduled_start__lte=timezone.now(),
            scheduled_start__gte=timezone.now() - timezone.timedelta(days=1),
        )
        .select_related("course__patient", "practitioner")
        .order_by("-scheduled_start")[:200]
    )
    today = timezone.localdate()
    substances = ["hyaluronic_acid", "vitamin_cocktail"]
    session = next(
        (
            s
            for s in candidates
            if not treatability(
                patient=s.course.patient, categories=substances, on=today
            ).hard_stops
        ),
        None,
    )
    products = [
        Product.objects.filter(
            category=category, lots__in=Lot.objects.usable_on(today).filter(quantity_on_hand__gte=1)
        ).first()
        for category in ("hyaluronic_acid", "vitamin_cocktail", "consumable")
    ]
    if session is None or None in products:
        return None, "no session due today that may be treated, or no stock"

    def complete() -> None:
        with transaction.atomic():
            safety = treatability(patient=session.course.patient, categories=substances, on=today)
            session_complete(
                session=session,
                record=dict(RECORD),
                lines=[ProductLine(product=p, quantity=Decimal(1)) for p in products],
                acknowledged=[flag.code for flag in safety.warnings],
                actor=session.practitioner,
            )
            transaction.set_rollback(True)

    return complete, f"session #{session.pk}"


def dispatch_once() -> None:
    """The dispatcher's transaction, rolled back: nothing is handed out."""
    from treatments.services import reminders

    with transaction.atomic():
        reminders.reminders_dispatch()
        transaction.set_rollback(True)


def measure(case: Case, clients: dict) -> Result:
    result = Result(case)
    client = clients.get(case.user)
    if case.action is None and not case.url:
        result.error = "not measured (nothing to measure it on in this database)"
        return result
    for run in range(args.warmup + args.runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            try:
                if case.action:
                    case.action()
                else:
                    response = client.get(case.url)
                    if response.status_code != 200:
                        raise AssertionError(f"status {response.status_code} for {case.url}")
            except Exception as error:  # noqa: BLE001 - reported, the other pages still run
                result.error = f"{type(error).__name__}: {error}"
                return result
            elapsed = (time.perf_counter() - started) * 1000
        if run >= args.warmup:
            result.ms.append(elapsed)
            result.queries.add(len(captured.captured_queries))
        if case.sql:
            with transaction.atomic(), connection.cursor() as cursor:
                started = time.perf_counter()
                cursor.execute(case.sql, case.params)
                rows = cursor.fetchall()
                sql_elapsed = (time.perf_counter() - started) * 1000
                transaction.set_rollback(True)
            if run >= args.warmup:
                result.sql_ms.append(sql_elapsed)
                result.rows = len(rows)
    if case.explain:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS OFF) {case.sql}", case.params)
            result.plan = [row[0] for row in cursor.fetchall()]
    return result


def main() -> None:
    name = connection.settings_dict["NAME"]
    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL (set DATABASE_URL).")
    if "scale" not in name and "bench" not in name and not args.force:
        sys.exit(f"Database {name!r}: pass --force to run on a database not named for it.")
    connection.settings_dict["CONN_MAX_AGE"] = None
    settings.DEBUG = False
    logging.getLogger("axes").setLevel(logging.WARNING)
    settings.CLINIC_ADMIN_REQUIRES_2FA = False  # the second factor is not what is measured

    counts = one(
        """SELECT (SELECT count(*) FROM patients_patient), (SELECT count(*) FROM
           treatments_session), (SELECT count(*) FROM inventory_stockmovement),
           (SELECT count(*) FROM treatments_reminder), (SELECT version())"""
    )
    print(f"Database {name}: {counts[4].split(',')[0]}; {os.cpu_count()} CPUs.")
    print(
        f"Data: {counts[0]:,} patients, {counts[1]:,} sessions, {counts[2]:,} stock movements, "
        f"{counts[3]:,} reminders."
    )
    chosen = pick()
    chosen["complete"], completing = completion(chosen)
    print(
        f"Chosen: patient #{chosen['patient_id']} ({chosen['name']}), practitioner "
        f"#{chosen['practitioner_id']} on {chosen['day']} ({chosen['day_sessions']} sessions), "
        f"session #{chosen['session_id']}, lot #{chosen['lot_id']} "
        f"({chosen['lot_lines']} product lines); completing {completing}."
    )
    users = get_user_model().objects
    practitioner = users.get(pk=chosen["practitioner_id"])
    clients = {}
    for role, user in (
        ("reception", users.get(username="reception")),
        ("dra.escoda", users.get(username="dra.escoda")),
        ("practitioner", practitioner),
        ("manager", users.get(username="manager")),
    ):
        clients[role] = Client()
        clients[role].force_login(user)

    print(f"\nMeasuring: {args.warmup} warm-up and {args.runs} measured runs each; ms.\n")
    results = [measure(case, clients) for case in cases(chosen)]

    header = (
        f"{'page':46} {'median':>7} {'p95':>7} {'queries':>7} {'SQL':>7} {'rows':>6} "
        f"{'ratio':>6}  target (p95 < {PAGE_TARGET_MS} ms, <= {QUERY_TARGET} queries, "
        f"ratio <= {RATIO_TARGET})"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.error:
            print(f"{r.case.name:46} ERROR {r.error}")
            continue
        median, p95 = percentile(r.ms, 0.5), percentile(r.ms, 0.95)
        sql = percentile(r.sql_ms, 0.5) if r.sql_ms else None
        ratio = median / sql if sql else None
        queries = max(r.queries)
        missed = []
        if p95 >= PAGE_TARGET_MS:
            missed.append(f"p95 {p95:.0f} ms")
        if queries > QUERY_TARGET:
            missed.append(f"{queries} queries")
        if ratio is not None and ratio > RATIO_TARGET:
            missed.append(f"ratio {ratio:.1f}")
        print(
            f"{r.case.name:46} {median:7.1f} {p95:7.1f} {queries:7d} "
            f"{(f'{sql:7.1f}' if sql is not None else '      -')} {r.rows or 0:6d} "
            f"{(f'{ratio:6.2f}' if ratio is not None else '     -')}  "
            f"{'MISSED: ' + ', '.join(missed) if missed else 'ok'}"
        )
    for r in results:
        if r.plan:
            print(f"\nPlan of the hand-written query for {r.case.name}:")
            for line in r.plan:
                print(f"  {line}")


if __name__ == "__main__":
    main()
