"""Reception sees every reminder and sends a failed one again. Every role's whole row is
applied again."""

from django.db import migrations

from clinic.roles import sync_roles

ROLE_PERMISSIONS = {
    "Reception": frozenset({
        "patients.add_consent",
        "patients.add_patient",
        "patients.add_screening",
        "patients.change_consent",
        "patients.change_patient",
        "patients.view_consent",
        "patients.view_patient",
        "patients.view_screening",
        "treatments.add_course",
        "treatments.add_session",
        "treatments.change_course",
        "treatments.change_reminder",
        "treatments.change_session",
        "treatments.view_course",
        "treatments.view_protocol",
        "treatments.view_reminder",
        "treatments.view_room",
        "treatments.view_session",
    }),
    "Practitioner": frozenset({
        "clinic.use_practice_pages",
        "inventory.view_lot",
        "inventory.view_product",
        "patients.add_screening",
        "patients.view_consent",
        "patients.view_patient",
        "patients.view_screening",
        "treatments.add_sessionproduct",
        "treatments.change_session",
        "treatments.view_course",
        "treatments.view_session",
        "treatments.view_sessionproduct",
    }),
    "Manager": frozenset({
        "clinic.view_reports",
        "inventory.add_lot",
        "inventory.add_product",
        "inventory.add_supplier",
        "inventory.change_lot",
        "inventory.change_product",
        "inventory.change_supplier",
        "inventory.view_lot",
        "inventory.view_product",
        "inventory.view_stockmovement",
        "inventory.view_supplier",
        "treatments.add_protocol",
        "treatments.add_room",
        "treatments.change_protocol",
        "treatments.change_room",
        "treatments.view_protocol",
        "treatments.view_room",
        "treatments.view_sessionproduct",
    }),
}


def apply(apps, schema_editor):
    sync_roles(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [("clinic", "0004_treatments_roles"), ("treatments", "0003_reminders")]
    operations = [migrations.RunPython(apply, migrations.RunPython.noop)]
