"""The clinic at scale for `seed_demo --scale medium|large`: a chain of clinics over ten years,
written by set-based SQL (PostgreSQL only), with the rows the services and django-simple-history
would have written.

Every table is filled by one `INSERT … SELECT` from temporary staging tables built with
`generate_series` and `random()` (seeded with `setseed`, so a run is repeatable on an empty
database). Ids come from each table's own sequence (`nextval` in the staging tables), so the
sequences are past the new rows without any fix-up. The shape:

- patients registered evenly over ten years, names from Spanish name lists, `name_key` folded by
  the app's own `patients.models.name_key` (in Python, per name; a key of the whole name is the
  keys of its words joined by spaces), one screening each, consents per kind;
- about one course a patient, about three sessions a course, the dates the course's interval
  apart, on weekdays, in 45-minute slots from 9:00 to 20:00 clinic time. Each practitioner of the
  chain works in a room of their own, and a practitioner's sessions of one day take that day's
  slots in turn, so no practitioner or room is ever booked twice; a day with more sessions than
  slots has the rest cancelled by the clinic (cancelled sessions hold no time);
- past sessions completed and signed (90 %), no-shows and cancellations; future ones booked;
- each completed session with one to three product lines, each paid for by a consumption
  movement on the lot of that product received for the fortnight. Each lot is received (one
  receipt, before anything leaves it) with exactly what leaves it: older lots end at zero, the
  current fortnight's lot keeps some stock. Waste makes up the remaining movements. Lot
  quantities, the daily and the monthly rollups are derived from the ledger in one pass each.

The fill adds to an empty or demo-only database: the demo is loaded first (through the
services), and a database with more than `MAX_PATIENTS_BEFORE` patients is refused.
"""

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from clinic.accounts import user_set_roles
from clinic.roles import MANAGER, PRACTITIONER
from clinic.substances import SubstanceCategory as S
from inventory.models import Product
from patients.demo import FAMILY, GIVEN_FEMALE, GIVEN_MALE
from patients.models import Patient, name_key
from treatments.demo import PROTOCOLS
from treatments.models import Protocol, Room

SCALES = {"medium": 100_000, "large": 1_000_000}
MAX_PATIENTS_BEFORE = 1_000
HISTORY_DAYS = 3652
SLOTS_PER_DAY = 14  # 45 minutes from 9:00 to 20:00
SLOT_LOAD = 0.55  # the share of the practitioners' weekday slots the sessions take
LOT_DAYS = 14  # each product's lots: one received every fortnight
MOVEMENTS_PER_PATIENT = 6

GIVEN_FEMALE_MORE = [
    "Andrea",
    "Claudia",
    "Julia",
    "Noelia",
    "Patricia",
    "Rosa",
    "Teresa",
    "Pilar",
    "Mercedes",
    "Montserrat",
    "Inés",
    "Sofía",
    "Verónica",
    "Lorena",
    "Natalia",
    "Susana",
    "Eva",
    "Rocío",
    "Ángela",
    "Yolanda",
]
GIVEN_MALE_MORE = ["Antonio", "José", "Francisco", "Miguel", "Rubén", "Óscar", "Iván", "Raúl"]
FAMILY_MORE = [
    "Castro",
    "Ortega",
    "Rubio",
    "Marín",
    "Sanz",
    "Núñez",
    "Iglesias",
    "Medina",
    "Garrido",
    "Cortés",
    "Castillo",
    "Santos",
    "Lozano",
    "Guerrero",
    "Cano",
    "Prieto",
    "Méndez",
    "Cruz",
    "Calvo",
    "Gallego",
    "Vidal",
    "León",
    "Márquez",
    "Peña",
    "Herrera",
    "Cabrera",
    "Flores",
    "Campos",
    "Vega",
    "Fuentes",
]
CITIES = [
    ("Barcelona", "080"),
    ("Madrid", "280"),
    ("Valencia", "460"),
    ("Sevilla", "410"),
    ("Málaga", "290"),
    ("Bilbao", "480"),
    ("Zaragoza", "500"),
    ("Palma", "070"),
    ("Alicante", "030"),
    ("Murcia", "300"),
]
STREETS = ["Calle Mayor", "Avenida Diagonal", "Calle de Alcalá", "Gran Vía", "Calle Colón"]
TECHNIQUE = {"hair_loss": "point_by_point", "body_contouring": "injector", "acne_scars": "papules"}


# ---------------------------------------------------------------------------------------------
# The SQL, one script per step. `%%` is a literal percent sign (the scripts take parameters).
# ---------------------------------------------------------------------------------------------

PATIENTS = """
CREATE TEMP TABLE scale_patient ON COMMIT DROP AS
SELECT nextval(pg_get_serial_sequence('patients_patient', 'id')) AS id,
       nextval(pg_get_serial_sequence('patients_screening', 'id')) AS screening_id,
       d.*,
       (d.registered + make_interval(secs => 9 * 3600 + floor(random() * 10 * 3600)::int))
           AT TIME ZONE %(tz)s AS created_at
FROM (
    SELECT i, g, f1, f2, registered,
           registered - (22 * 365 + floor(random() * 46 * 365)::int) AS born,
           CASE WHEN r < 0.2 THEN 0 WHEN r < 0.8 THEN 1 WHEN r < 0.95 THEN 2 ELSE 3 END
               AS courses,
           1 + floor(random() * %(city_count)s)::int AS city,
           random() AS channel_draw, random() AS misc_draw, random() AS consent_draw
    FROM (
        SELECT i,
               CASE WHEN random() < 0.8 THEN 1 + floor(random() * %(female_count)s)::int
                    ELSE %(female_count)s + 1 + floor(random() * %(male_count)s)::int END AS g,
               1 + floor(random() * %(family_count)s)::int AS f1,
               1 + floor(random() * %(family_count)s)::int AS f2,
               %(first_day)s::date + floor(random() * (%(days)s - 30))::int AS registered,
               random() AS r
        FROM generate_series(1, %(patients)s) AS i
    ) AS p
    -- ids follow registration, as in a clinic's own database
    ORDER BY registered, i
) AS d;

INSERT INTO patients_patient (id, given_name, family_name, date_of_birth, sex, email,
    mobile_phone, preferred_channel, reminders_opt_out, preferred_language, address_line,
    postal_code, city, fitzpatrick_type, glogau_type, notes, name_key, created_at, updated_at)
SELECT p.id, (%(given)s::text[])[g], (%(family)s::text[])[f1] || ' ' || (%(family)s::text[])[f2],
       born, CASE WHEN g <= %(female_count)s THEN 'female' ELSE 'male' END,
       (%(given_ascii)s::text[])[g] || '.' || (%(family_ascii)s::text[])[f1] || p.id
           || '@example.com',
       -- Spanish mobiles, distinct for the first 90 million ids
       '+346' || (10000000 + mod(p.id * 7919, 90000000))::text,
       CASE WHEN channel_draw < 0.4 THEN 'sms' ELSE 'email' END,
       misc_draw < 0.05,
       CASE WHEN mod(p.id, 7) = 0 THEN 'en' ELSE 'es' END,
       (%(streets)s::text[])[1 + mod(p.id, 5)::int] || ' ' || (1 + mod(p.id, 200)),
       (%(postcodes)s::text[])[city] || lpad(mod(p.id, 100)::text, 2, '0'),
       (%(cities)s::text[])[city],
       (ARRAY['I', 'II', 'III', 'IV', 'V', 'VI'])[1 + mod(p.id, 6)::int],
       (ARRAY['I', 'II', 'III', 'IV'])[1 + mod(p.id / 6, 4)::int],
       '',
       (%(given_key)s::text[])[g] || ' ' || (%(family_key)s::text[])[f1] || ' '
           || (%(family_key)s::text[])[f2],
       created_at, created_at
FROM scale_patient AS p ORDER BY p.id;

INSERT INTO patients_historicalpatient (id, given_name, family_name, date_of_birth, sex, email,
    mobile_phone, preferred_channel, reminders_opt_out, preferred_language, address_line,
    postal_code, city, fitzpatrick_type, glogau_type, notes, name_key, created_at, updated_at,
    history_date, history_change_reason, history_type, history_user_id)
SELECT id, given_name, family_name, date_of_birth, sex, email, mobile_phone, preferred_channel,
       reminders_opt_out, preferred_language, address_line, postal_code, city, fitzpatrick_type,
       glogau_type, notes, name_key, created_at, updated_at, created_at, NULL, '+', %(reception)s
FROM patients_patient WHERE id >= (SELECT min(id) FROM scale_patient) ORDER BY id
"""

SCREENINGS = """
CREATE TEMP TABLE scale_screening ON COMMIT DROP AS
SELECT screening_id AS id, id AS patient_id, registered AS taken_on,
       created_at + interval '5 minutes' AS recorded_at,
       random() < 0.02 AS pregnant_or_breastfeeding, random() < 0.05 AS anticoagulants,
       random() < 0.04 AS autoimmune_disease, random() < 0.04 AS keloid_tendency,
       random() < 0.06 AS diabetes, random() < 0.04 AS anaemia,
       random() < 0.03 AS allergy_anaesthetic,
       CASE WHEN random() < 0.1
            THEN (ARRAY['penicillin', 'latex', 'nickel', 'pollen'])[1 + floor(random() * 4)::int]
            ELSE '' END AS allergies
FROM scale_patient;

INSERT INTO patients_screening (id, patient_id, taken_on, pregnant_or_breastfeeding,
    anticoagulants, nsaids_last_48h, autoimmune_disease, active_infection_at_site, allergies,
    allergy_hyaluronic_acid, allergy_vitamins, allergy_anaesthetic, keloid_tendency,
    bleeding_disorder, anaemia, cancer_under_treatment, immunosuppression,
    vaccination_last_7_days, diabetes, recorded_by_id, recorded_at)
SELECT id, patient_id, taken_on, pregnant_or_breastfeeding, anticoagulants, false,
       autoimmune_disease, false, allergies, false, false, allergy_anaesthetic, keloid_tendency,
       false, anaemia, false, false, false, diabetes, %(reception)s, recorded_at
FROM scale_screening ORDER BY id;

INSERT INTO patients_historicalscreening (id, taken_on, pregnant_or_breastfeeding,
    anticoagulants, nsaids_last_48h, autoimmune_disease, active_infection_at_site, allergies,
    allergy_hyaluronic_acid, allergy_vitamins, allergy_anaesthetic, keloid_tendency,
    bleeding_disorder, anaemia, cancer_under_treatment, immunosuppression,
    vaccination_last_7_days, diabetes, recorded_at, history_date, history_change_reason,
    history_type, history_user_id, recorded_by_id, patient_id)
SELECT id, taken_on, pregnant_or_breastfeeding, anticoagulants, false, autoimmune_disease,
       false, allergies, false, false, allergy_anaesthetic, keloid_tendency, false, anaemia,
       false, false, false, diabetes, recorded_at, recorded_at, NULL, '+', %(reception)s,
       %(reception)s, patient_id
FROM scale_screening ORDER BY id
"""

CONSENTS = """
CREATE TEMP TABLE scale_consent ON COMMIT DROP AS
SELECT nextval(pg_get_serial_sequence('patients_consent', 'id')) AS id, c.*,
       CASE WHEN c.kind = 'photography' AND random() < 0.08
            THEN least(c.signed_at + make_interval(days => 30 + floor(random() * 700)::int),
                       %(now)s::timestamptz)
            END AS withdrawn_at
FROM (
    SELECT p.id AS patient_id, k.kind,
           to_char(p.registered, 'YYYY') || '-01' AS form_version,
           p.created_at + interval '10 minutes' AS signed_at
    FROM scale_patient AS p
    CROSS JOIN (VALUES (1, 'mesotherapy', 1.0), (2, 'prp', 0.3), (3, 'photography', 0.55),
                       (4, 'marketing_photos', 0.15)) AS k(n, kind, share)
    -- one draw per patient, as the demo does: who agrees to PRP agrees to photographs
    WHERE k.share >= 1 OR p.consent_draw < k.share
    ORDER BY p.id, k.n
) AS c;

INSERT INTO patients_consent (id, patient_id, kind, form_version, signed_at, recorded_by_id,
    withdrawn_at, withdrawal_reason)
SELECT id, patient_id, kind, form_version, signed_at, %(reception)s, withdrawn_at,
       CASE WHEN withdrawn_at IS NULL THEN ''
            ELSE 'Patient no longer wants photographs taken.' END
FROM scale_consent ORDER BY id;

INSERT INTO patients_historicalconsent (id, kind, form_version, signed_at, withdrawn_at,
    withdrawal_reason, history_date, history_change_reason, history_type, history_user_id,
    recorded_by_id, patient_id)
SELECT id, kind, form_version, signed_at, NULL, '', signed_at, NULL, '+', %(reception)s,
       %(reception)s, patient_id
FROM scale_consent
UNION ALL
SELECT id, kind, form_version, signed_at, withdrawn_at,
       'Patient no longer wants photographs taken.', withdrawn_at,
       'Patient no longer wants photographs taken.', '~', %(reception)s, %(reception)s,
       patient_id
FROM scale_consent WHERE withdrawn_at IS NOT NULL
"""

# Courses and their sessions, staged; the course's status follows from its sessions.
PLAN = """
CREATE TEMP TABLE scale_course ON COMMIT DROP AS
SELECT nextval(pg_get_serial_sequence('treatments_course', 'id')) AS id, c.*,
       CASE WHEN random() < 0.45 THEN c.planned_sessions
            ELSE 1 + floor(random() * (c.planned_sessions - 1))::int END AS booked,
       ''::text AS status, ''::text AS status_reason
FROM (
    SELECT p.id AS patient_id, p.screening_id, k, x.protocol, x.practitioner, x.start_date,
           (%(planned)s::int[])[x.protocol] AS planned_sessions,
           (%(interval_min)s::int[])[x.protocol] AS interval_min_days,
           (%(interval_max)s::int[])[x.protocol] AS interval_max_days,
           (%(interval_min)s::int[])[x.protocol]
               + floor(random() * ((%(interval_max)s::int[])[x.protocol]
                                   - (%(interval_min)s::int[])[x.protocol] + 1))::int
               AS interval_days,
           CASE WHEN k = 1 THEN p.created_at + interval '20 minutes'
                ELSE greatest(p.created_at + interval '20 minutes',
                              (x.start_date - 10 + time '10:00') AT TIME ZONE %(tz)s) END
               AS created_at
    FROM scale_patient AS p
    CROSS JOIN LATERAL generate_series(1, p.courses) AS k
    CROSS JOIN LATERAL (
        SELECT 1 + floor(random() * %(protocol_count)s)::int AS protocol,
               1 + floor(random() * %(practitioner_count)s)::int AS practitioner,
               CASE WHEN k = 1 THEN p.registered + 1 + floor(random() * 14)::int
                    ELSE p.registered + (k - 1) * (150 + floor(random() * 400)::int) END
                   AS start_date
        -- referring to k makes PostgreSQL draw afresh for every course
        WHERE k > 0
    ) AS x
    WHERE x.start_date <= %(today)s::date + 45
    ORDER BY created_at, p.id, k
) AS c;

CREATE TEMP TABLE scale_session ON COMMIT DROP AS
WITH planned AS (
    SELECT c.id AS course_id, c.patient_id, c.screening_id, c.protocol, c.practitioner,
           c.created_at AS booked_at, n AS number,
           c.start_date + (n - 1) * c.interval_days AS raw_day
    FROM scale_course AS c CROSS JOIN LATERAL generate_series(1, c.booked) AS n
), dated AS (
    -- A Saturday or Sunday moves to a weekday of the next week, spread over all five (moving
    -- them all to the Monday would overfill Mondays). Never more than six days on, and
    -- sessions are at least a week apart, so a course's sessions keep their order.
    SELECT *, raw_day + CASE extract(isodow FROM raw_day)
                            WHEN 6 THEN 2 + mod(course_id + number, 5)::int
                            WHEN 7 THEN 1 + mod(course_id + number, 5)::int
                            ELSE 0 END AS day
    FROM planned
), slotted AS (
    SELECT *, row_number() OVER (PARTITION BY practitioner, day ORDER BY booked_at, course_id)
                  - 1 AS slot
    FROM dated
), timed AS (
    SELECT *, ((day + time '09:00') + mod(slot, %(slots)s) * interval '45 minutes')
                  AT TIME ZONE %(tz)s AS starts,
           random() AS status_draw, random() AS record_draw
    FROM slotted
)
SELECT nextval(pg_get_serial_sequence('treatments_session', 'id')) AS id, s.*
FROM (
    SELECT t.*, t.starts + interval '45 minutes' AS ends,
           (%(practitioners)s::int[])[t.practitioner] AS practitioner_id,
           (%(rooms)s::bigint[])[t.practitioner] AS room_id,
           CASE WHEN t.slot >= %(slots)s THEN 'cancelled_clinic'
                WHEN t.starts + interval '45 minutes' > %(now)s::timestamptz
                    THEN CASE WHEN t.status_draw < 0.4 THEN 'confirmed' ELSE 'scheduled' END
                WHEN t.status_draw < 0.90 THEN 'completed'
                WHEN t.status_draw < 0.95 THEN 'no_show'
                WHEN t.status_draw < 0.98 THEN 'cancelled_patient'
                ELSE 'cancelled_clinic' END AS status,
           t.starts + interval '45 minutes' + make_interval(mins => 2 + floor(random() * 15)::int)
               AS signed_at,
           1 + (random() < 0.7)::int + (random() < 0.4)::int AS lines
    FROM timed AS t
    -- ids follow the sessions' times
    ORDER BY t.starts, t.course_id
) AS s;

UPDATE scale_course AS c
SET status = CASE WHEN t.ahead > 0 AND t.done > 0 THEN 'active'
                  WHEN t.ahead > 0 THEN 'planned'
                  WHEN t.done = 0 THEN 'cancelled'
                  WHEN c.booked < c.planned_sessions THEN 'cancelled'
                  ELSE 'completed' END,
    status_reason = CASE WHEN t.ahead > 0 THEN ''
                         WHEN t.done = 0 THEN 'No session took place.'
                         WHEN c.booked < c.planned_sessions
                             THEN 'The patient did not continue.'
                         ELSE '' END
FROM (
    SELECT course_id,
           count(*) FILTER (WHERE status IN ('scheduled', 'confirmed')) AS ahead,
           count(*) FILTER (WHERE status = 'completed') AS done
    FROM scale_session GROUP BY course_id
) AS t
WHERE t.course_id = c.id
"""

COURSES = """
INSERT INTO treatments_course (id, patient_id, protocol_id, lead_practitioner_id, indication,
    planned_sessions, interval_min_days, interval_max_days, start_date, status, status_reason,
    notes, created_at)
SELECT id, patient_id, (%(protocol_ids)s::bigint[])[protocol],
       (%(practitioners)s::int[])[practitioner], (%(indications)s::text[])[protocol],
       planned_sessions, interval_min_days, interval_max_days, start_date, status, status_reason,
       '', created_at
FROM scale_course ORDER BY id;

INSERT INTO treatments_historicalcourse (id, indication, planned_sessions, interval_min_days,
    interval_max_days, start_date, status, status_reason, notes, created_at, history_date,
    history_change_reason, history_type, history_user_id, lead_practitioner_id, patient_id,
    protocol_id)
SELECT id, (%(indications)s::text[])[protocol], planned_sessions, interval_min_days,
       interval_max_days, start_date, 'planned', '', '', created_at, created_at, NULL, '+',
       %(reception)s, (%(practitioners)s::int[])[practitioner], patient_id,
       (%(protocol_ids)s::bigint[])[protocol]
FROM scale_course ORDER BY id
"""

# A session as it is now, and the two states history keeps: as booked ('+', by reception) and,
# once it is no longer only booked, as it ended ('~': signed by its practitioner, or marked a
# no-show or cancelled at the desk).
SESSION_ROW = """
    {prefix}id, number, scheduled_start, scheduled_end, status, status_reason, areas, technique,
    needle_gauge, needle_length_mm, depth_mm, anaesthetic_cream, anaesthetic_minutes,
    prp_blood_ml, prp_centrifuge_rpm, prp_centrifuge_minutes, prp_minutes_to_injection,
    erythema, oedema, bruising, persistent_papules, pain_score, vasovagal_reaction,
    infection_signs, adverse_other, aftercare_given, photos_taken, clinical_notes,
    acknowledged_warnings, signed_at, course_id, practitioner_id, screening_id, signed_by_id,
    room_id
"""
SESSION_FINAL = """
    SELECT s.id, s.number, s.starts, s.ends, s.status,
           CASE s.status WHEN 'cancelled_clinic' THEN 'The practitioner''s day was full.'
                         WHEN 'cancelled_patient' THEN 'Called to cancel.' ELSE '' END,
           CASE WHEN done THEN (%(areas)s::text[])[s.protocol]::jsonb ELSE '[]'::jsonb END,
           CASE WHEN done THEN (%(techniques)s::text[])[s.protocol] ELSE '' END,
           CASE WHEN done THEN 32 END, CASE WHEN done THEN 4.0 END,
           CASE WHEN done THEN 1.5 END, done AND s.record_draw < 0.4,
           CASE WHEN done AND s.record_draw < 0.4 THEN 30 END,
           CASE WHEN done AND prp THEN 10.0 END, CASE WHEN done AND prp THEN 3500 END,
           CASE WHEN done AND prp THEN 8 END, CASE WHEN done AND prp THEN 20 END,
           done AND s.record_draw < 0.6, done AND s.record_draw < 0.2,
           done AND s.record_draw < 0.1, false,
           CASE WHEN done THEN 1 + floor(s.record_draw * 5)::int END, false, false, '', done,
           done AND s.record_draw < 0.5, '', '[]'::jsonb,
           CASE WHEN done THEN s.signed_at END, s.course_id, s.practitioner_id,
           CASE WHEN done THEN s.screening_id END, CASE WHEN done THEN s.practitioner_id END,
           s.room_id
    FROM (SELECT *, status = 'completed' AS done,
                 (%(indications)s::text[])[protocol] = 'hair_loss' AS prp
          FROM scale_session) AS s
"""
SESSIONS = f"""
INSERT INTO treatments_session ({SESSION_ROW.format(prefix="")})
{SESSION_FINAL} ORDER BY s.id;

INSERT INTO treatments_historicalsession ({SESSION_ROW.format(prefix="")},
    history_date, history_change_reason, history_type, history_user_id)
SELECT id, number, starts, ends, 'scheduled', '', '[]'::jsonb, '', NULL, NULL, NULL, false,
       NULL, NULL, NULL, NULL, NULL, false, false, false, false, NULL, false, false, '', false,
       false, '', '[]'::jsonb, NULL, course_id, practitioner_id, NULL, NULL, room_id,
       booked_at, NULL, '+', %(reception)s
FROM scale_session ORDER BY id;

INSERT INTO treatments_historicalsession ({SESSION_ROW.format(prefix="")},
    history_date, history_change_reason, history_type, history_user_id)
SELECT f.*,
       CASE s.status WHEN 'completed' THEN s.signed_at
                     WHEN 'no_show' THEN s.ends + interval '30 minutes'
                     ELSE greatest(s.booked_at + interval '1 minute', s.starts - interval '1 day')
                     END,
       CASE s.status WHEN 'completed' THEN 'Completed and signed'
                     WHEN 'confirmed' THEN 'Confirmed by the patient' ELSE NULL END,
       '~',
       CASE WHEN s.status = 'completed' THEN s.practitioner_id ELSE %(reception)s END
FROM ({SESSION_FINAL}) AS f({SESSION_ROW.format(prefix="")})
JOIN scale_session AS s ON s.id = f.id
WHERE s.status <> 'scheduled'
ORDER BY s.id
"""

# The ledger: lines of the completed sessions, the fortnight's lot of each product, waste, and
# one receipt per lot that covers exactly what leaves it (plus what the current lot keeps).
LEDGER = """
CREATE TEMP TABLE scale_line ON COMMIT DROP AS
SELECT s.id AS session_id, l.line, s.signed_at, s.practitioner_id,
       (%(line_products)s::bigint[])[(s.protocol - 1) * 3 + l.line] AS product_id,
       CASE WHEN l.line = 2 THEN 2 ELSE 1 END::numeric AS quantity,
       CASE WHEN l.line = 2 THEN NULL ELSE 2.5 END AS volume_ml,
       ((%(areas)s::text[])[s.protocol]::jsonb) ->> 0 AS area,
       (s.day - %(first_day)s::date) / %(lot_days)s AS window_number
FROM scale_session AS s CROSS JOIN LATERAL generate_series(1, s.lines) AS l(line)
WHERE s.status = 'completed';

CREATE TEMP TABLE scale_lot ON COMMIT DROP AS
SELECT nextval(pg_get_serial_sequence('inventory_lot', 'id')) AS id, w.*,
       %(first_day)s::date + w.window_number * %(lot_days)s AS received,
       %(first_day)s::date + w.window_number * %(lot_days)s + %(lot_days)s + 120
           + floor(random() * 300)::int AS expiry,
       round((coalesce(c.cost, 10) * (0.95 + random() * 0.1))::numeric, 2) AS unit_cost,
       CASE WHEN w.window_number = %(current_window)s THEN 20 + floor(random() * 40)
            ELSE 0 END::numeric AS leftover
FROM (
    SELECT DISTINCT product_id, window_number FROM scale_line
    UNION
    SELECT product_id, %(current_window)s FROM unnest(%(products)s::bigint[]) AS product_id
    ORDER BY window_number, product_id
) AS w
LEFT JOIN (SELECT product_id, avg(unit_cost) AS cost FROM inventory_lot GROUP BY product_id)
    AS c ON c.product_id = w.product_id;

CREATE TEMP TABLE scale_movement (
    lot_id bigint, kind text, quantity numeric(12, 3), occurred_at timestamptz, actor_id integer,
    waste_reason text, reference text, session_id bigint, line int
) ON COMMIT DROP;

INSERT INTO scale_movement
SELECT t.id, 'consumption', -l.quantity, l.signed_at, l.practitioner_id, '',
       'session ' || l.session_id, l.session_id, l.line
FROM scale_line AS l JOIN scale_lot AS t
    ON t.product_id = l.product_id AND t.window_number = l.window_number;

-- Waste, on lots of past fortnights, makes up the planned number of movements.
INSERT INTO scale_movement
SELECT t.id, 'waste', -1,
       ((t.received + floor(random() * %(lot_days)s)::int)
        + make_interval(secs => 9 * 3600 + floor(random() * 11 * 3600)::int))
           AT TIME ZONE %(tz)s,
       %(manager)s,
       (ARRAY['opened_unused', 'opened_unused', 'damaged', 'cold_chain'])
           [1 + floor(random() * 4)::int],
       '', NULL, NULL
FROM (SELECT array_agg(id) AS ids FROM scale_lot WHERE window_number < %(current_window)s - 1)
     AS old
CROSS JOIN LATERAL (
    SELECT old.ids[1 + floor(random() * cardinality(old.ids))::int] AS lot_id
    FROM generate_series(1, greatest(0, %(movements)s - (SELECT count(*) FROM scale_line)
                                        - (SELECT count(*) FROM scale_lot)))
    WHERE cardinality(old.ids) > 0
) AS pick
JOIN scale_lot AS t ON t.id = pick.lot_id;

INSERT INTO scale_movement
SELECT t.id, 'receipt', t.leftover - coalesce(o.total, 0),
       (t.received + time '08:00') AT TIME ZONE %(tz)s, %(manager)s, '',
       'Delivery note ' || to_char(t.received, 'YYYYMMDD') || '-' || t.product_id, NULL, NULL
FROM scale_lot AS t
LEFT JOIN (SELECT lot_id, sum(quantity) AS total FROM scale_movement GROUP BY lot_id) AS o
    ON o.lot_id = t.id;

CREATE TEMP TABLE scale_ledger ON COMMIT DROP AS
SELECT nextval(pg_get_serial_sequence('inventory_stockmovement', 'id')) AS id, m.*
FROM (SELECT * FROM scale_movement ORDER BY occurred_at) AS m;

INSERT INTO inventory_lot (id, product_id, lot_number, expiry_date, unit_cost, supplier_id,
    received_on, status, status_reason, quantity_on_hand)
SELECT t.id, t.product_id, 'S' || to_char(t.received, 'YYMMDD') || '-' || t.product_id,
       t.expiry, t.unit_cost, p.default_supplier_id, t.received, 'available', '', t.leftover
FROM scale_lot AS t JOIN inventory_product AS p ON p.id = t.product_id ORDER BY t.id;

INSERT INTO inventory_historicallot (id, lot_number, expiry_date, unit_cost, received_on,
    status, status_reason, history_date, history_change_reason, history_type, history_user_id,
    product_id, supplier_id)
SELECT id, lot_number, expiry_date, unit_cost, received_on, status, status_reason,
       (received_on + time '08:00') AT TIME ZONE %(tz)s, NULL, '+', %(manager)s, product_id,
       supplier_id
FROM inventory_lot WHERE id IN (SELECT id FROM scale_lot) ORDER BY id;

INSERT INTO inventory_stockmovement (id, lot_id, kind, quantity, unit_cost, occurred_at,
    actor_id, waste_reason, reason, reference, reverses_id)
SELECT m.id, m.lot_id, m.kind, m.quantity, t.unit_cost, m.occurred_at, m.actor_id,
       m.waste_reason, '', m.reference, NULL
FROM scale_ledger AS m JOIN scale_lot AS t ON t.id = m.lot_id
ORDER BY m.id
"""

LINES = """
CREATE TEMP TABLE scale_session_product ON COMMIT DROP AS
SELECT nextval(pg_get_serial_sequence('treatments_sessionproduct', 'id')) AS id, x.*
FROM (
    SELECT m.session_id, m.id AS movement_id, m.lot_id, t.product_id, l.quantity, l.volume_ml,
           l.area, l.signed_at, l.practitioner_id
    FROM scale_ledger AS m
    JOIN scale_line AS l ON l.session_id = m.session_id AND l.line = m.line
    JOIN scale_lot AS t ON t.id = m.lot_id
    WHERE m.kind = 'consumption'
    ORDER BY m.session_id, m.line
) AS x;

INSERT INTO treatments_sessionproduct (id, session_id, product_id, lot_id, quantity, volume_ml,
    area, movement_id, voided_at, void_reason)
SELECT id, session_id, product_id, lot_id, quantity, volume_ml, area, movement_id, NULL, ''
FROM scale_session_product ORDER BY id;

INSERT INTO treatments_historicalsessionproduct (id, quantity, volume_ml, area, voided_at,
    void_reason, history_date, history_change_reason, history_type, history_user_id, lot_id,
    movement_id, product_id, session_id)
SELECT id, quantity, volume_ml, area, NULL, '', signed_at, NULL, '+', practitioner_id, lot_id,
       movement_id, product_id, session_id
FROM scale_session_product ORDER BY id
"""

ROLLUPS = """
INSERT INTO inventory_stockday (day, lot_id, product_id, kind, actor_id, waste_reason, quantity,
                                value, movements)
SELECT (m.occurred_at AT TIME ZONE %(tz)s)::date, m.lot_id, t.product_id, m.kind, m.actor_id,
       m.waste_reason, sum(m.quantity), sum(m.quantity * t.unit_cost), count(*)
FROM scale_ledger AS m JOIN scale_lot AS t ON t.id = m.lot_id
GROUP BY 1, 2, 3, 4, 5, 6
ORDER BY 1;

INSERT INTO inventory_stockmonth (month, product_id, kind, actor_id, waste_reason, quantity,
                                  value, movements)
SELECT date_trunc('month', d.day)::date, d.product_id, d.kind, d.actor_id, d.waste_reason,
       sum(d.quantity), sum(d.value), sum(d.movements)
FROM inventory_stockday AS d
WHERE d.lot_id IN (SELECT id FROM scale_lot)
GROUP BY 1, 2, 3, 4, 5
"""

REMINDERS = """
INSERT INTO treatments_reminder (session_id, channel, before, session_start, due_at, status,
    reason, attempts, enqueued_at, claimed_at, sent_at, recipient, provider_id, last_error,
    created_at)
SELECT s.id, p.preferred_channel, interval '1 day', s.starts, s.starts - interval '1 day',
       CASE WHEN s.starts - interval '1 day' > %(now)s::timestamptz THEN 'pending'
            ELSE 'sent' END,
       '', CASE WHEN s.starts - interval '1 day' > %(now)s::timestamptz THEN 0 ELSE 1 END,
       NULL,
       CASE WHEN s.starts - interval '1 day' > %(now)s::timestamptz THEN NULL
            ELSE s.starts - interval '1 day' END,
       CASE WHEN s.starts - interval '1 day' > %(now)s::timestamptz THEN NULL
            ELSE s.starts - interval '1 day' + interval '2 seconds' END,
       CASE WHEN s.starts - interval '1 day' > %(now)s::timestamptz THEN ''
            WHEN p.preferred_channel = 'sms' THEN p.mobile_phone ELSE p.email END,
       '', '', s.booked_at
FROM scale_session AS s JOIN patients_patient AS p ON p.id = s.patient_id
WHERE NOT p.reminders_opt_out
  AND (s.status IN ('scheduled', 'confirmed')
       OR (s.status = 'completed' AND s.starts > %(now)s::timestamptz - interval '90 days'))
  AND s.starts - interval '1 day' > s.booked_at
ORDER BY s.starts - interval '1 day', s.id
"""

COUNTS = {
    "patients": "patients_patient",
    "screenings": "patients_screening",
    "consents": "patients_consent",
    "courses": "treatments_course",
    "sessions": "treatments_session",
    "product lines": "treatments_sessionproduct",
    "reminders": "treatments_reminder",
    "lots": "inventory_lot",
    "stock movements": "inventory_stockmovement",
    "stock days": "inventory_stockday",
    "stock months": "inventory_stockmonth",
    "history: patients": "patients_historicalpatient",
    "history: sessions": "treatments_historicalsession",
    "history: product lines": "treatments_historicalsessionproduct",
}
ANALYZED = [
    "patients_patient",
    "patients_historicalpatient",
    "patients_screening",
    "patients_historicalscreening",
    "patients_consent",
    "patients_historicalconsent",
    "treatments_course",
    "treatments_historicalcourse",
    "treatments_session",
    "treatments_historicalsession",
    "treatments_sessionproduct",
    "treatments_historicalsessionproduct",
    "treatments_reminder",
    "inventory_lot",
    "inventory_historicallot",
    "inventory_stockmovement",
    "inventory_stockday",
    "inventory_stockmonth",
]


# Indexes (other than primary keys), unique and exclusion constraints and foreign keys of the
# filled tables: dropped for the fill and built again before the commit, in the same
# transaction, so no other session ever sees the tables without them. Building an index once is
# several times cheaper than updating it row by row, and adding a constraint checks every row in
# one pass: re-adding the sessions' exclusion constraints is what proves that no practitioner or
# room is booked twice, and re-adding a foreign key checks all its rows with one join instead of
# one lookup per row at commit.
DEFERRED_INDEXES = """
SELECT format('DROP INDEX %%s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid)
FROM pg_index AS i
WHERE i.indrelid = ANY(%(tables)s::regclass[]) AND NOT i.indisprimary
  AND NOT EXISTS (SELECT FROM pg_constraint AS c WHERE c.conindid = i.indexrelid)
"""
DEFERRED_CONSTRAINTS = """
SELECT format('ALTER TABLE %%s DROP CONSTRAINT %%I', c.conrelid::regclass, c.conname),
       format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', c.conrelid::regclass, c.conname,
              pg_get_constraintdef(c.oid)),
       c.contype
FROM pg_constraint AS c
WHERE c.conrelid = ANY(%(tables)s::regclass[])
  AND (c.contype IN ('f', 'x')
       OR (c.contype = 'u' AND NOT EXISTS (
               SELECT FROM pg_constraint AS f WHERE f.contype = 'f' AND f.conindid = c.conindid)))
-- unique and exclusion constraints before the foreign keys
ORDER BY c.contype = 'f', c.conname
"""


@dataclass
class Chain:
    """The staff and rooms the fill books: one practitioner per room, numbered alike."""

    practitioners: list[int]
    rooms: list[int]
    manager: int


def practitioners_needed(patients: int) -> int:
    weekdays = HISTORY_DAYS * 5 // 7
    sessions = 3 * patients
    return max(1, math.ceil(sessions / (SLOT_LOAD * weekdays * SLOTS_PER_DAY)))


def _chain(count: int) -> Chain:
    """The chain's practitioners (`sede01.p1` …) and their rooms, and the stock room's manager,
    created on first use: they are not the demo's, so the fill books none of the demo's time
    and its rollup rows never meet the demo's."""
    User = get_user_model()
    practitioners, rooms = [], []
    for n in range(count):
        site, chair = divmod(n, 5)
        username = f"sede{site + 1:02d}.p{chair + 1}"
        given = (GIVEN_FEMALE + GIVEN_MALE)[n % 27]
        family = FAMILY[(n * 7) % len(FAMILY)]
        user, created = User.objects.get_or_create(
            username=username, defaults={"first_name": given, "last_name": family}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user_set_roles(user=user, roles=[PRACTITIONER])
        practitioners.append(user.pk)
        rooms.append(
            Room.objects.get_or_create(name=f"Sede {site + 1:02d} · Cabina {chair + 1}")[0].pk
        )
    manager, created = User.objects.get_or_create(
        username="almacen.central", defaults={"first_name": "Almacén", "last_name": "Central"}
    )
    if created:
        manager.set_unusable_password()
        manager.save(update_fields=["password"])
        user_set_roles(user=manager, roles=[MANAGER])
    return Chain(practitioners=practitioners, rooms=rooms, manager=manager.pk)


def _protocol_products(protocols: list[Protocol]) -> list[int]:
    """For each protocol, the products of its three possible lines: its main substance, the
    needle (or the mesogun's cartridge), and a second substance or a syringe."""
    products = list(Product.objects.order_by("id"))
    if not products:
        raise CommandError("The demo's products are missing: run `seed_demo` first.")

    def first(category, word=""):
        for product in products:
            if product.category == category and word.lower() in product.name.lower():
                return product.pk
        return products[0].pk

    chosen = []
    for protocol in protocols:
        categories = protocol.product_categories or [S.HYALURONIC_ACID]
        main = first(categories[0])
        tool = (
            first(S.CONSUMABLE, "cartridge")
            if protocol.indication == "body_contouring"
            else first(S.CONSUMABLE, "needle")
        )
        extra = first(categories[1]) if len(categories) > 1 else first(S.CONSUMABLE, "syringe")
        chosen += [main, tool, extra]
    return chosen


def _names() -> dict:
    given = GIVEN_FEMALE + GIVEN_FEMALE_MORE + GIVEN_MALE + GIVEN_MALE_MORE
    family = FAMILY + FAMILY_MORE
    for word in given + family:
        # The SQL joins the words' keys with spaces: true of name_key for one-word names.
        assert " " not in word and name_key(word) and " " not in name_key(word)
    return {
        "given": given,
        "given_key": [name_key(word) for word in given],
        "given_ascii": [name_key(word) for word in given],
        "family": family,
        "family_key": [name_key(word) for word in family],
        "family_ascii": [name_key(word) for word in family],
        "female_count": len(GIVEN_FEMALE) + len(GIVEN_FEMALE_MORE),
        "male_count": len(GIVEN_MALE) + len(GIVEN_MALE_MORE),
        "family_count": len(family),
    }


def _run(cursor, script: str, params: dict) -> None:
    for statement in script.split(";\n\n"):
        if statement.strip():
            cursor.execute(statement, params)


def check_database() -> None:
    """Refuses SQLite, and a database that holds more than the demo."""
    if connection.vendor != "postgresql":
        raise CommandError(
            "--scale medium and large need PostgreSQL (set DATABASE_URL to a postgres:// URL); "
            f"this database is {connection.vendor}."
        )
    existing = Patient.objects.count()
    if existing > MAX_PATIENTS_BEFORE:
        raise CommandError(
            f"The database already holds {existing:,} patients; the scale fill only adds to an "
            f"empty or demo-only database (at most {MAX_PATIENTS_BEFORE:,} patients). Use a "
            "fresh database."
        )


def fill(*, patients: int, reception_id: int, say: Callable[[str], None], seed: float = 0.26):
    """Adds `patients` patients and their decade of care to a demo-only PostgreSQL database.
    One transaction: a failure leaves the database as it was."""
    check_database()
    started = time.perf_counter()
    today = timezone.localdate()
    first_day = today - timedelta(days=HISTORY_DAYS)
    chain = _chain(practitioners_needed(patients))
    protocols = [Protocol.objects.get(name=row[0]) for row in PROTOCOLS]
    line_products = _protocol_products(protocols)
    params = {
        **_names(),
        "patients": patients,
        "movements": MOVEMENTS_PER_PATIENT * patients,
        "first_day": first_day,
        "today": today,
        "now": timezone.now(),
        "days": HISTORY_DAYS,
        "tz": settings.TIME_ZONE,
        "slots": SLOTS_PER_DAY,
        "lot_days": LOT_DAYS,
        "current_window": (today - first_day).days // LOT_DAYS,
        "reception": reception_id,
        "manager": chain.manager,
        "practitioners": chain.practitioners,
        "rooms": chain.rooms,
        "practitioner_count": len(chain.practitioners),
        "cities": [city for city, _ in CITIES],
        "postcodes": [code for _, code in CITIES],
        "city_count": len(CITIES),
        "streets": STREETS,
        "protocol_ids": [p.pk for p in protocols],
        "protocol_count": len(protocols),
        "indications": [p.indication for p in protocols],
        "planned": [p.sessions for p in protocols],
        "interval_min": [p.interval_min_days for p in protocols],
        "interval_max": [p.interval_max_days for p in protocols],
        "areas": [_json(p.areas or ["full_face"]) for p in protocols],
        "techniques": [TECHNIQUE.get(p.indication, "nappage") for p in protocols],
        "line_products": line_products,
        "products": sorted(set(line_products)),
    }
    say(
        f"Filling {patients:,} patients, {len(chain.practitioners)} practitioners and rooms, "
        f"from {first_day} to {today}:"
    )
    # Local buffers for the staging tables; only possible before this session's first one (the
    # savepoint keeps a refusal from spoiling a caller's transaction).
    with contextlib.suppress(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET temp_buffers = '2GB'")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET LOCAL work_mem = '512MB'")
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        cursor.execute("SELECT setseed(%s)", [seed])
        # A table cannot be altered while checks of rows written earlier in the transaction
        # (the demo's, inside a caller's transaction) are pending: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        step = time.perf_counter()
        cursor.execute(DEFERRED_INDEXES, {"tables": ANALYZED})
        indexes = cursor.fetchall()
        cursor.execute(DEFERRED_CONSTRAINTS, {"tables": ANALYZED})
        constraints = cursor.fetchall()
        for drop, *_ in constraints + indexes:
            cursor.execute(drop)
        say(
            f"  {len(indexes)} indexes and {len(constraints)} constraints set aside: "
            f"{time.perf_counter() - step:.1f} s"
        )
        for name, script in [
            ("patients (and history)", PATIENTS),
            ("screenings (and history)", SCREENINGS),
            ("consents (and history)", CONSENTS),
            ("courses and sessions planned", PLAN),
            ("courses (and history)", COURSES),
            ("sessions (and history: booked, ended)", SESSIONS),
            ("lots, stock movements (and lot history)", LEDGER),
            ("session product lines (and history)", LINES),
            ("daily and monthly stock rollups", ROLLUPS),
            ("reminders", REMINDERS),
        ]:
            step = time.perf_counter()
            _run(cursor, script, params)
            say(f"  {name}: {time.perf_counter() - step:.1f} s")
        step = time.perf_counter()
        for _drop, create in indexes:
            cursor.execute(create)
        for _drop, add, kind in constraints:
            if kind != "f":
                cursor.execute(add)
        say(
            "  indexes, unique and exclusion constraints built (no double booking): "
            f"{time.perf_counter() - step:.1f} s"
        )
        step = time.perf_counter()
        for _drop, add, kind in constraints:
            if kind == "f":
                cursor.execute(add)
        say(f"  foreign keys checked: {time.perf_counter() - step:.1f} s")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        step = time.perf_counter()
    say(f"  commit (deferred foreign-key checks): {time.perf_counter() - step:.1f} s")
    step = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(ANALYZED)}")
    say(f"  analyze: {time.perf_counter() - step:.1f} s")
    say(f"  total: {time.perf_counter() - started:.1f} s")
    return counts()


def counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT " + ", ".join(f"(SELECT count(*) FROM {table})" for table in COUNTS.values())
        )
        return dict(zip(COUNTS, cursor.fetchone(), strict=True))


def overlapping_sessions() -> int:
    """Occupying sessions that overlap the previous one of the same practitioner or room."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT count(*) FILTER (WHERE scheduled_start < by_practitioner)
                   + count(*) FILTER (WHERE scheduled_start < by_room)
            FROM (
                SELECT scheduled_start,
                       lag(scheduled_end) OVER (PARTITION BY practitioner_id
                                                ORDER BY scheduled_start) AS by_practitioner,
                       lag(scheduled_end) OVER (PARTITION BY room_id
                                                ORDER BY scheduled_start) AS by_room
                FROM treatments_session
                WHERE status IN ('scheduled', 'confirmed', 'checked_in', 'completed')
            ) AS s""")
        return cursor.fetchone()[0]


def _json(value) -> str:
    return json.dumps(value)
