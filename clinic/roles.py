"""The clinic's roles and what each may see and change. docs/roles.md is this matrix in prose;
tests/clinic/test_roles.py checks the groups in the database against it.

Data migrations freeze a copy of the matrix as it stood when they were written (migrations are
history); a migration that changes a role re-applies the whole row with `sync_roles`.
"""

from collections.abc import Mapping

RECEPTION = "Reception"
PRACTITIONER = "Practitioner"
MANAGER = "Manager"

# Roles whose members work in the Django admin, so their accounts need is_staff.
ADMIN_ROLES = frozenset({RECEPTION, MANAGER})

ROLE_PERMISSIONS: Mapping[str, frozenset[str]] = {
    RECEPTION: frozenset(
        {
            "patients.add_patient",
            "patients.change_patient",
            "patients.view_patient",
            "patients.add_screening",
            "patients.view_screening",
            "patients.add_consent",
            "patients.change_consent",
            "patients.view_consent",
            "treatments.view_protocol",
            "treatments.view_room",
            "treatments.add_course",
            "treatments.change_course",
            "treatments.view_course",
            "treatments.add_session",
            "treatments.change_session",
            "treatments.view_session",
            # Every reminder in the admin; changing one is sending a failed one again.
            "treatments.view_reminder",
            "treatments.change_reminder",
        }
    ),
    PRACTITIONER: frozenset(
        {
            "clinic.use_practice_pages",
            "patients.view_patient",
            "patients.add_screening",
            "patients.view_screening",
            "patients.view_consent",
            "treatments.view_course",
            "treatments.view_session",
            # Completing and amending a session: its record, its product lines.
            "treatments.change_session",
            "treatments.add_sessionproduct",
            "treatments.view_sessionproduct",
            "inventory.view_product",
            "inventory.view_lot",
        }
    ),
    MANAGER: frozenset(
        {
            "clinic.view_reports",
            "inventory.add_supplier",
            "inventory.change_supplier",
            "inventory.view_supplier",
            "inventory.add_product",
            "inventory.change_product",
            "inventory.view_product",
            # Adding a lot is receiving stock; changing one is quarantine, release, recall,
            # count, discard and return, each through its service.
            "inventory.add_lot",
            "inventory.change_lot",
            "inventory.view_lot",
            "inventory.view_stockmovement",
            # Protocols and rooms are the clinic's set-up; the recall report lists sessions.
            "treatments.add_protocol",
            "treatments.change_protocol",
            "treatments.view_protocol",
            "treatments.add_room",
            "treatments.change_room",
            "treatments.view_room",
            "treatments.view_sessionproduct",
        }
    ),
}


def sync_roles(apps, matrix: Mapping[str, frozenset[str]]) -> None:
    """Makes each group hold exactly the permissions the matrix gives it. Idempotent.

    Works on the migration's historical models. Permissions are normally created after all
    migrations ran; they are created here first so that a fresh database gets its groups in
    the same `migrate`.
    """
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in matrix.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = []
        for dotted in sorted(codenames):
            app_label, codename = dotted.split(".", 1)
            permissions.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(permissions)
