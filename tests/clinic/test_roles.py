"""The roles: their permissions in the database, where each lands, and what each may open.
docs/roles.md is this matrix in prose."""

import re

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from clinic.accounts import user_set_roles
from clinic.roles import ADMIN_ROLES, MANAGER, PRACTITIONER, RECEPTION, ROLE_PERMISSIONS, sync_roles
from tests.factories import ConsentFactory, PatientFactory, ProductFactory, UserFactory, receive

pytestmark = pytest.mark.django_db

LOGIN = "login"


def group_permissions(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    }


def test_migrations_create_each_group_with_exactly_its_permissions():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLE_PERMISSIONS)
    for role, permissions in ROLE_PERMISSIONS.items():
        assert group_permissions(role) == set(permissions), role


def test_syncing_the_roles_again_changes_nothing():
    executor = MigrationExecutor(connection)
    state = executor.loader.project_state()
    before = {role: group_permissions(role) for role in ROLE_PERMISSIONS}
    sync_roles(state.apps, ROLE_PERMISSIONS)
    sync_roles(state.apps, ROLE_PERMISSIONS)
    assert Group.objects.filter(name__in=ROLE_PERMISSIONS).count() == len(ROLE_PERMISSIONS)
    assert {role: group_permissions(role) for role in ROLE_PERMISSIONS} == before


def test_syncing_removes_a_permission_granted_by_hand():
    reception = Group.objects.get(name=RECEPTION)
    from django.contrib.auth.models import Permission

    reception.permissions.add(Permission.objects.get(codename="delete_patient"))
    executor = MigrationExecutor(connection)
    sync_roles(executor.loader.project_state().apps, ROLE_PERMISSIONS)
    assert "patients.delete_patient" not in group_permissions(RECEPTION)


def test_admin_roles_get_staff_status_and_others_do_not():
    for role in (RECEPTION, PRACTITIONER, MANAGER):
        user = user_set_roles(user=UserFactory(username=role.lower()), roles=[role])
        assert user.is_staff is (role in ADMIN_ROLES)


def test_unknown_role_is_refused():
    with pytest.raises(ValueError, match="Unknown roles: Surgeon"):
        user_set_roles(user=UserFactory(), roles=["Surgeon"])


@pytest.mark.parametrize(
    ("role", "landing"),
    [(RECEPTION, "/admin/"), (PRACTITIONER, "/practice/"), (MANAGER, "/reports/")],
)
def test_logging_in_lands_each_role_on_its_page(client, role, landing):
    user = user_set_roles(user=UserFactory(username="someone"), roles=[role])
    response = client.post(
        reverse(LOGIN),
        {"username": user.username, "password": "correct horse battery"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == landing
    assert response.status_code == 200


def test_a_wrong_password_shows_an_error_and_logs_nobody_in(client):
    UserFactory(username="someone")
    response = client.post(reverse(LOGIN), {"username": "someone", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_user_without_a_role_is_told_so(client):
    client.force_login(UserFactory())
    response = client.get("/")
    assert response.status_code == 403
    assert "no role" in response.content.decode()


def test_a_superuser_lands_in_the_admin(client):
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    assert client.get("/")["Location"] == "/admin/"


# What each role gets at each URL: a status code, or "login" for a redirect to a login page.
ACCESS = {
    # url name:                           anonymous reception practitioner manager
    "home": ("login", 302, 302, 302),
    "health": (200, 200, 200, 200),
    "patients:search": ("login", 403, 200, 403),
    "patients:safety": ("login", 403, 200, 403),
    "patients:screening": ("login", 403, 200, 403),
    "reports:index": ("login", 403, 403, 200),
    "reports:patient_records": ("login", 403, 403, 200),
    "admin:index": ("login", 200, "login", 200),
    "admin:patients_patient_changelist": ("login", 200, "login", 403),
    "admin:patients_patient_add": ("login", 200, "login", 403),
    "admin:patients_patient_change": ("login", 200, "login", 403),
    "admin:patients_patient_history": ("login", 200, "login", 403),
    "admin:patients_patient_delete": ("login", 403, "login", 403),
    "admin:patients_consent_changelist": ("login", 200, "login", 403),
    "admin:patients_consent_change": ("login", 200, "login", 403),
    "admin:patients_consent_withdraw": ("login", 200, "login", 403),
    "admin:auth_user_changelist": ("login", 403, "login", 403),
    "admin:auth_group_changelist": ("login", 403, "login", 403),
    "stock:receive": ("login", 403, 403, 200),
    "reports:stock_on_hand": ("login", 403, 403, 200),
    "reports:stock_low": ("login", 403, 403, 200),
    "reports:stock_expiring": ("login", 403, 403, 200),
    "reports:stock_consumption": ("login", 403, 403, 200),
    "reports:stock_consumption_chart": ("login", 403, 403, 200),
    "reports:stock_waste": ("login", 403, 403, 200),
    "reports:stock_valuation": ("login", 403, 403, 200),
    "reports:stock_lot_ledger": ("login", 403, 403, 200),
    "admin:inventory_supplier_changelist": ("login", 403, "login", 200),
    "admin:inventory_supplier_add": ("login", 403, "login", 200),
    "admin:inventory_product_changelist": ("login", 403, "login", 200),
    "admin:inventory_product_add": ("login", 403, "login", 200),
    "admin:inventory_product_change": ("login", 403, "login", 200),
    "admin:inventory_product_delete": ("login", 403, "login", 403),
    "admin:inventory_lot_changelist": ("login", 403, "login", 200),
    "admin:inventory_lot_add": ("login", 403, "login", 403),
    "admin:inventory_lot_change": ("login", 403, "login", 200),
    "admin:inventory_lot_delete": ("login", 403, "login", 403),
    "admin:inventory_lot_import": ("login", 403, "login", 200),
    "admin:inventory_lot_operate": ("login", 403, "login", 200),
    "admin:inventory_stockmovement_changelist": ("login", 403, "login", 200),
    "admin:inventory_stockmovement_change": ("login", 403, "login", 200),
    "admin:inventory_stockmovement_delete": ("login", 403, "login", 403),
    "treatments:my_day": ("login", 403, 200, 403),
    "treatments:session": ("login", 403, 200, 403),
    "treatments:session_amend": ("login", 403, 200, 403),
    "treatments:course": ("login", 403, 200, 403),
    "reports:stock_lot_recall": ("login", 403, 403, 200),
    "admin:treatments_protocol_changelist": ("login", 200, "login", 200),
    "admin:treatments_protocol_add": ("login", 403, "login", 200),
    "admin:treatments_room_changelist": ("login", 200, "login", 200),
    "admin:treatments_room_add": ("login", 403, "login", 200),
    "admin:treatments_course_changelist": ("login", 200, "login", 403),
    "admin:treatments_course_add": ("login", 200, "login", 403),
    "admin:treatments_course_change": ("login", 200, "login", 403),
    "admin:treatments_course_plan": ("login", 200, "login", 403),
    "admin:treatments_session_changelist": ("login", 200, "login", 403),
    "admin:treatments_session_change": ("login", 200, "login", 403),
    "admin:treatments_session_history": ("login", 200, "login", 403),
    "admin:treatments_session_cancel": ("login", 200, "login", 403),
    "admin:treatments_session_delete": ("login", 403, "login", 403),
    "admin:treatments_reminder_changelist": ("login", 200, "login", 403),
    "admin:treatments_reminder_change": ("login", 200, "login", 403),
    "admin:treatments_reminder_add": ("login", 403, "login", 403),
    "admin:treatments_reminder_delete": ("login", 403, "login", 403),
    "patient_export": ("login", 200, 403, 403),
    "patient_export_print": ("login", 200, 403, 403),
    "admin:clinic_accesslog_changelist": ("login", 403, "login", 403),
    # Django's own admin pages, and models no role administers (users, groups, login records,
    # second-factor devices: superusers only). A history page is read-only.
    "admin:app_list": ("login", 200, "login", 404),
    "admin:autocomplete": ("login", 403, "login", 403),
    "admin:jsi18n": ("login", 200, "login", 200),
    "admin:login": ("login", 302, 200, 302),
    "admin:logout": ("login", 405, 302, 405),
    "admin:password_change": ("login", 200, "login", 200),
    "admin:password_change_done": ("login", 200, "login", 200),
    "admin:view_on_site": ("login", 302, "login", 302),
    "admin:auth_group_add": ("login", 403, "login", 403),
    "admin:auth_group_change": ("login", 403, "login", 403),
    "admin:auth_group_delete": ("login", 403, "login", 403),
    "admin:auth_group_history": ("login", 403, "login", 403),
    "admin:auth_user_add": ("login", 403, "login", 403),
    "admin:auth_user_change": ("login", 403, "login", 403),
    "admin:auth_user_delete": ("login", 403, "login", 403),
    "admin:auth_user_history": ("login", 403, "login", 403),
    "admin:auth_user_password_change": ("login", 403, "login", 403),
    "admin:axes_accessattempt_changelist": ("login", 403, "login", 403),
    "admin:axes_accessattempt_add": ("login", 403, "login", 403),
    "admin:axes_accessattempt_change": ("login", 403, "login", 403),
    "admin:axes_accessattempt_delete": ("login", 403, "login", 403),
    "admin:axes_accessattempt_history": ("login", 403, "login", 403),
    "admin:axes_accessfailurelog_changelist": ("login", 403, "login", 403),
    "admin:axes_accessfailurelog_add": ("login", 403, "login", 403),
    "admin:axes_accessfailurelog_change": ("login", 403, "login", 403),
    "admin:axes_accessfailurelog_delete": ("login", 403, "login", 403),
    "admin:axes_accessfailurelog_history": ("login", 403, "login", 403),
    "admin:axes_accesslog_changelist": ("login", 403, "login", 403),
    "admin:axes_accesslog_add": ("login", 403, "login", 403),
    "admin:axes_accesslog_change": ("login", 403, "login", 403),
    "admin:axes_accesslog_delete": ("login", 403, "login", 403),
    "admin:axes_accesslog_history": ("login", 403, "login", 403),
    "admin:clinic_accesslog_add": ("login", 403, "login", 403),
    "admin:clinic_accesslog_change": ("login", 403, "login", 403),
    "admin:clinic_accesslog_delete": ("login", 403, "login", 403),
    "admin:clinic_accesslog_history": ("login", 403, "login", 403),
    "admin:otp_totp_totpdevice_changelist": ("login", 403, "login", 403),
    "admin:otp_totp_totpdevice_add": ("login", 403, "login", 403),
    "admin:otp_totp_totpdevice_change": ("login", 403, "login", 403),
    "admin:otp_totp_totpdevice_config": ("login", 403, "login", 403),
    "admin:otp_totp_totpdevice_delete": ("login", 403, "login", 403),
    "admin:otp_totp_totpdevice_history": ("login", 403, "login", 403),
    "admin:otp_totp_totpdevice_qrcode": ("login", 403, "login", 403),
    # History pages and the read-only view of one version, beside the rows above.
    "admin:inventory_lot_history": ("login", 403, "login", 200),
    "admin:inventory_lot_simple_history": ("login", 403, "login", 200),
    "admin:inventory_product_history": ("login", 403, "login", 200),
    "admin:inventory_product_simple_history": ("login", 403, "login", 200),
    "admin:inventory_stockmovement_add": ("login", 403, "login", 403),
    "admin:inventory_stockmovement_history": ("login", 403, "login", 200),
    "admin:inventory_supplier_change": ("login", 403, "login", 200),
    "admin:inventory_supplier_delete": ("login", 403, "login", 403),
    "admin:inventory_supplier_history": ("login", 403, "login", 200),
    "admin:patients_consent_add": ("login", 403, "login", 403),
    "admin:patients_consent_delete": ("login", 403, "login", 403),
    "admin:patients_consent_history": ("login", 200, "login", 403),
    "admin:patients_consent_simple_history": ("login", 200, "login", 403),
    "admin:patients_patient_simple_history": ("login", 200, "login", 403),
    "admin:treatments_course_delete": ("login", 403, "login", 403),
    "admin:treatments_course_history": ("login", 200, "login", 403),
    "admin:treatments_course_simple_history": ("login", 200, "login", 403),
    "admin:treatments_protocol_change": ("login", 200, "login", 200),
    "admin:treatments_protocol_delete": ("login", 403, "login", 403),
    "admin:treatments_protocol_history": ("login", 200, "login", 200),
    "admin:treatments_protocol_simple_history": ("login", 200, "login", 200),
    "admin:treatments_reminder_history": ("login", 200, "login", 403),
    "admin:treatments_room_change": ("login", 200, "login", 200),
    "admin:treatments_room_delete": ("login", 403, "login", 403),
    "admin:treatments_room_history": ("login", 200, "login", 200),
    "admin:treatments_session_add": ("login", 403, "login", 403),
    "admin:treatments_session_simple_history": ("login", 200, "login", 403),
    # Logging in and out: the login page sends a logged-in user on; logging out and changing
    # the language are POSTs (a GET is refused or sent back); the second step is for anyone
    # logged in.
    "login": (200, 302, 302, 302),
    "logout": ("login", 405, 405, 405),
    "set_language": ("login", 302, 302, 302),
    "two_factor": ("login", 200, 200, 200),
    # The patient's links from a reminder: the signed token is the key, not a login.
    "appointment_confirm": (200, 200, 200, 200),
    "appointment_cancel": (200, 200, 200, 200),
}
ROLES = [None, RECEPTION, PRACTITIONER, MANAGER]


def _a_session(patient):
    from django.utils import timezone

    from tests.factories import ProtocolFactory, RoomFactory
    from treatments import services

    lead = user_set_roles(user=UserFactory(username="lead"), roles=[PRACTITIONER])
    course = services.course_plan(
        patient=patient,
        protocol=ProtocolFactory(),
        lead_practitioner=lead,
        start_date=timezone.localdate(),
        actor=lead,
    )
    start = timezone.now() + timezone.timedelta(days=1)
    return services.session_book(
        course=course,
        number=1,
        start=start,
        end=start + timezone.timedelta(minutes=45),
        practitioner=lead,
        room=RoomFactory(),
        actor=lead,
    )


ADMIN_OBJECT_URL = re.compile(
    r"^admin:(?P<model>[a-z_]+?)_"
    r"(?P<action>change|delete|history|simple_history|cancel|plan|withdraw|operate|config|qrcode|password_change)$"
)
OTHER_ARGS = {
    "treatments:session": "treatments_session",
    "treatments:session_amend": "treatments_session",
    "treatments:course": "treatments_course",
    "reports:stock_lot_recall": "inventory_lot",
    "reports:stock_lot_ledger": "inventory_lot",
    "admin:inventory_lot_operate": "inventory_lot",
    "patients:safety": "patients_patient",
    "patients:screening": "patients_patient",
    "patient_export": "patients_patient",
    "patient_export_print": "patients_patient",
}


def _objects(patient, consent, lot, session) -> dict:
    """One object of every model the admin or a page shows, keyed as its admin URLs are."""
    from axes.models import AccessAttempt, AccessFailureLog
    from axes.models import AccessLog as LoginRecord
    from django.contrib.auth.models import Group
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from clinic.models import AccessLog
    from tests.factories import SupplierFactory

    when = {"ip_address": "10.0.0.1", "user_agent": "test", "username": "someone"}
    return {
        "patients_patient": patient,
        "patients_consent": consent,
        "inventory_lot": lot,
        "inventory_product": lot.product,
        "inventory_supplier": SupplierFactory(),
        "inventory_stockmovement": lot.movements.first(),
        "treatments_session": session,
        "treatments_course": session.course,
        "treatments_protocol": session.course.protocol,
        "treatments_room": session.room,
        "treatments_reminder": session.reminders.first(),
        "clinic_accesslog": AccessLog.objects.create(username="someone", event="login"),
        "axes_accessattempt": AccessAttempt.objects.create(failures_since_start=1, **when),
        "axes_accesslog": LoginRecord.objects.create(**when),
        "axes_accessfailurelog": AccessFailureLog.objects.create(**when),
        "otp_totp_totpdevice": TOTPDevice.objects.create(user=session.practitioner, name="phone"),
        "auth_user": session.practitioner,
        "auth_group": Group.objects.get(name=RECEPTION),
    }


def _url(name, objects):
    from django.contrib.contenttypes.models import ContentType

    if name in OTHER_ARGS:
        return reverse(name, args=[objects[OTHER_ARGS[name]].pk])
    if name in ("appointment_confirm", "appointment_cancel"):
        from treatments.reminder_policy import link_token

        session = objects["treatments_session"]
        token = link_token(
            session_id=session.pk,
            session_start=session.scheduled_start,
            action=name.removeprefix("appointment_"),
        )
        return reverse(name, args=[token])
    if name == "admin:app_list":
        return reverse(name, args=["patients"])
    if name == "admin:view_on_site":
        patient = objects["patients_patient"]
        return reverse(name, args=[ContentType.objects.get_for_model(patient).pk, patient.pk])
    match = ADMIN_OBJECT_URL.match(name)
    if match and match["model"] in objects:
        obj = objects[match["model"]]
        if match["action"] == "simple_history":
            return reverse(name, args=[obj.pk, obj.history.first().history_id])
        return reverse(name, args=[obj.pk])
    return reverse(name)


def _every_url_name() -> set[str]:
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns, namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
                yield from walk(pattern.url_patterns, inner)
            elif isinstance(pattern, URLPattern) and pattern.name:
                yield namespace + pattern.name

    return set(walk(get_resolver().url_patterns))


def test_the_matrix_covers_every_url_of_the_project():
    assert _every_url_name() - set(ACCESS) == set()
    assert set(ACCESS) - _every_url_name() == set()


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_role_matrix(client, role):
    patient = PatientFactory()
    consent = ConsentFactory(patient=patient)
    lot = receive(ProductFactory(), quantity="3")
    objects = _objects(patient, consent, lot, _a_session(patient))
    if role:
        client.force_login(user_set_roles(user=UserFactory(username="member"), roles=[role]))
    column = ROLES.index(role)
    failures = []
    for name, expected_row in ACCESS.items():
        expected = expected_row[column]
        response = client.get(_url(name, objects))
        if expected == "login":
            ok = response.status_code == 302 and "login" in response["Location"]
        else:
            ok = response.status_code == expected
        if not ok:
            failures.append(
                f"{name}: expected {expected}, got {response.status_code} "
                f"{response.get('Location', '')}"
            )
    assert failures == []


def test_setting_a_role_whose_group_is_missing_says_to_migrate():
    Group.objects.filter(name=MANAGER).delete()
    with pytest.raises(ValueError, match="run `migrate`"):
        user_set_roles(user=UserFactory(), roles=[MANAGER])
