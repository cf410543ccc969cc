"""Creates the Reception, Practitioner and Manager groups with their permissions.

The matrix is frozen here as it stood when this migration was written; clinic/roles.py holds the
current one, and a later migration that changes a role applies its whole new row."""

from django.db import migrations

from clinic.roles import sync_roles

ROLE_PERMISSIONS = {
    "Reception": frozenset({
        "patients.add_patient", "patients.change_patient", "patients.view_patient",
        "patients.add_screening", "patients.view_screening",
        "patients.add_consent", "patients.change_consent", "patients.view_consent",
    }),
    "Practitioner": frozenset({
        "clinic.use_practice_pages",
        "patients.view_patient", "patients.add_screening", "patients.view_screening",
        "patients.view_consent",
    }),
    "Manager": frozenset({"clinic.view_reports"}),
}


def create_roles(apps, schema_editor):
    sync_roles(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0001_initial"),
        ("patients", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
