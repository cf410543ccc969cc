"""On PostgreSQL the database itself refuses two occupying sessions of one practitioner, or of
one room, whose times overlap, whoever books them and however at once. The booking services
check the same under row locks first, so users get a clear message; this is the guarantee."""

from django.db import migrations

from clinic.migration_operations import postgresql_only

OCCUPYING = "('scheduled', 'confirmed', 'checked_in', 'completed')"
CREATE = f"""
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE treatments_session ADD CONSTRAINT session_practitioner_not_double_booked
    EXCLUDE USING gist (
        practitioner_id WITH =, tstzrange(scheduled_start, scheduled_end, '[)') WITH &&
    ) WHERE (status IN {OCCUPYING});
ALTER TABLE treatments_session ADD CONSTRAINT session_room_not_double_booked
    EXCLUDE USING gist (
        room_id WITH =, tstzrange(scheduled_start, scheduled_end, '[)') WITH &&
    ) WHERE (status IN {OCCUPYING});
"""
DROP = """
ALTER TABLE treatments_session DROP CONSTRAINT IF EXISTS session_practitioner_not_double_booked;
ALTER TABLE treatments_session DROP CONSTRAINT IF EXISTS session_room_not_double_booked;
"""


class Migration(migrations.Migration):
    dependencies = [("treatments", "0001_initial")]
    operations = [postgresql_only(CREATE, DROP)]
