"""Migration operations the apps share."""

from django.db import migrations


def postgresql_only(sql: str, reverse_sql: str) -> migrations.RunPython:
    """Runs `sql` (and `reverse_sql` when unapplied) on PostgreSQL only: triggers, exclusion
    constraints and index types that SQLite, the embedded default, does not have. SQLite relies
    on the application's own guards instead."""

    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    def backwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(reverse_sql)

    return migrations.RunPython(forwards, backwards)
