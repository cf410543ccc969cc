import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from clinic.roles import MANAGER, PRACTITIONER, RECEPTION
from patients.models import Consent, Patient, Screening

pytestmark = pytest.mark.django_db


def test_seed_demo_builds_a_clinic_and_running_it_twice_adds_nothing(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "50 patients, 36 lots and 52 sessions added" in out
    assert "demo-clinic-2026" in out
    users = get_user_model().objects
    assert users.filter(groups__name=RECEPTION).count() == 1
    assert users.filter(groups__name=PRACTITIONER).count() == 2
    assert users.filter(groups__name=MANAGER).count() == 1
    counts = (Patient.objects.count(), Screening.objects.count(), Consent.objects.count())
    assert counts[0] == 50 and counts[1] >= 40 and counts[2] >= 50
    assert Consent.objects.filter(withdrawn_at__isnull=False).exists()
    assert Patient.history.filter(history_user__username="reception").count() == 50
    from django.utils import timezone

    from inventory.reports import ledger_discrepancies, rollup_discrepancies
    from treatments.models import Session

    assert Session.objects.filter(status="completed", products__isnull=False).exists()
    assert Session.objects.filter(status="scheduled", scheduled_start__gte=timezone.now()).exists()
    assert ledger_discrepancies() == rollup_discrepancies() == []

    call_command("seed_demo")
    assert "0 patients, 0 lots and 0 sessions added" in capsys.readouterr().out
    assert (Patient.objects.count(), Screening.objects.count(), Consent.objects.count()) == counts


@pytest.mark.parametrize(
    ("username", "landing"),
    [
        ("reception", "/admin/"),
        ("dra.escoda", "/practice/"),
        ("dr.ferrer", "/practice/"),
        ("manager", "/reports/"),
    ],
)
def test_demo_accounts_log_in_and_land_on_their_page(client, username, landing):
    call_command("seed_demo", patients=3)
    response = client.post(
        "/accounts/login/", {"username": username, "password": "demo-clinic-2026"}, follow=True
    )
    assert response.redirect_chain[-1][0] == landing
    assert response.status_code == 200
