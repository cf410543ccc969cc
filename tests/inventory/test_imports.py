from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from inventory.models import Lot, StockMovement
from tests.factories import ProductFactory, SupplierFactory, receive

pytestmark = pytest.mark.django_db

LATER = (timezone.localdate() + timedelta(days=300)).isoformat()
PAST = (timezone.localdate() - timedelta(days=3)).isoformat()
HEADER = "product,lot_number,expiry_date,quantity,unit_cost,supplier,reference\n"


@pytest.fixture
def catalogue():
    SupplierFactory(name="Dermo Supplies")
    return {
        "ha": ProductFactory(name="HA 1%", gtin="08437012345015"),
        "needle": ProductFactory(name="Needle 30G", category="consumable", stock_unit="piece"),
    }


def refused(tmp_path, capsys, text: str, problems: int) -> str:
    """Imports `text`, which must be refused for `problems` problems; what the command wrote."""
    path = tmp_path / "delivery.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CommandError, match=f"{problems} problem"):
        call_command("import_delivery", str(path))
    return capsys.readouterr().err


def good_file():
    return HEADER + (
        f"08437012345015,A-1,{LATER},10,18.50,Dermo Supplies,ALB-1\n"
        f'needle 30g,N-7,{LATER},500,"0,18",,ALB-1\n'
    )


def test_a_good_file_receives_every_line(catalogue, tmp_path, capsys):
    path = tmp_path / "delivery.csv"
    path.write_text(good_file(), encoding="utf-8")
    call_command("import_delivery", str(path))
    assert "Received 2 line(s), 510 units." in capsys.readouterr().out
    lots = {lot.lot_number: lot for lot in Lot.objects.all()}
    assert lots["A-1"].supplier.name == "Dermo Supplies"
    assert lots["N-7"].unit_cost == Decimal("0.18")
    assert StockMovement.objects.get(lot=lots["A-1"]).actor.username == "system"


def test_the_same_delivery_note_imported_again_is_refused(catalogue, tmp_path, capsys):
    path = tmp_path / "delivery.csv"
    path.write_text(good_file(), encoding="utf-8")
    call_command("import_delivery", str(path))
    err = refused(tmp_path, capsys, good_file(), problems=2)
    today = timezone.localdate().strftime("%d/%m/%Y")
    assert f"row 2: delivery note ALB-1 was already received into lot A-1 on {today}" in err
    assert "row 3: delivery note ALB-1 was already received into lot N-7" in err
    assert sum(lot.quantity_on_hand for lot in Lot.objects.all()) == 510
    # Another delivery note of the same lots is received.
    path.write_text(good_file().replace("ALB-1", "ALB-2"), encoding="utf-8")
    call_command("import_delivery", str(path))
    assert sum(lot.quantity_on_hand for lot in Lot.objects.all()) == 1020


def test_one_bad_row_imports_nothing_and_every_error_is_listed(catalogue, tmp_path, capsys):
    path = tmp_path / "delivery.csv"
    path.write_text(
        good_file()
        + (
            f"unknown thing,X-1,{LATER},1,1,,\n"
            f"HA 1%,,31/02/2027,0,-2,Nobody,\n"
            f"HA 1%,A-2,{PAST},1,1,,\n"
        ),
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match="Nothing was received: 3 problem"):
        call_command("import_delivery", str(path))
    err = capsys.readouterr().err
    assert "row 4: no product with GTIN or name “unknown thing”" in err
    # Found by the stock rules, though other rows were already wrong.
    assert "row 6: This lot expired on" in err
    assert "row 5: the lot number is empty; the expiry date “31/02/2027” is not a date" in err
    assert "the quantity “0” is not a number above zero" in err
    assert "the unit cost “-2” is not a number of 0 or more" in err
    assert "no supplier named “Nobody”" in err
    assert Lot.objects.count() == 0 and StockMovement.objects.count() == 0


def test_problems_the_stock_rules_find_are_listed_by_row_too(catalogue, tmp_path, capsys):
    receive(catalogue["ha"], lot_number="A-1", expiry=timezone.localdate() + timedelta(days=30))
    err = refused(
        tmp_path,
        capsys,
        HEADER + f"HA 1%,A-9,{LATER},1,1,,\nHA 1%,A-3,{PAST},1,1,,\nHA 1%,A-1,{LATER},1,1,,\n",
        problems=2,
    )
    assert "row 3: This lot expired on" in err
    assert "row 4: Lot A-1 of HA 1% is on file with expiry" in err
    assert not Lot.objects.filter(lot_number="A-9").exists()


def test_numbers_no_column_can_hold_are_listed_by_row(catalogue, tmp_path, capsys):
    err = refused(
        tmp_path,
        capsys,
        HEADER
        + f"HA 1%,A-1,{LATER},1e30,1,,\n"
        + f"HA 1%,A-2,{LATER},1,Infinity,,\n"
        + f"HA 1%,A-3,{LATER},1,NaN,,\n"
        + f"HA 1%,A-4,{LATER},2.5,1e30,,\n",
        problems=4,
    )
    assert "row 2: Enter less than 1,000,000,000." in err
    assert "row 3: the unit cost “Infinity” is not a number of 0 or more" in err
    assert "row 4: the unit cost “NaN” is not a number of 0 or more" in err
    assert "row 5: Enter less than 100,000,000." in err
    assert Lot.objects.count() == 0


def test_one_lot_written_two_ways_in_a_file_is_listed(catalogue, tmp_path, capsys):
    err = refused(
        tmp_path, capsys, HEADER + f"HA 1%,D-1,{LATER},1,1,,\nHA 1%,d-1,{LATER},1,1,,\n", 1
    )
    assert "row 3: lot d-1 is written D-1 on row 2" in err
    assert Lot.objects.count() == 0


def test_semicolon_files_from_spanish_spreadsheets(catalogue, tmp_path):
    path = tmp_path / "albaran.csv"
    path.write_bytes((HEADER.replace(",", ";") + f"HA 1%;B-1;{LATER};4;12,5;;\n").encode("cp1252"))
    call_command("import_delivery", str(path))
    assert Lot.objects.get().unit_cost == Decimal("12.50")


def test_a_lot_twice_in_one_file_with_two_expiries_is_refused(catalogue, tmp_path, capsys):
    other = (timezone.localdate() + timedelta(days=100)).isoformat()
    path = tmp_path / "delivery.csv"
    path.write_text(HEADER + f"HA 1%,D-1,{LATER},1,1,,\nHA 1%,D-1,{other},1,1,,\n")
    with pytest.raises(CommandError):
        call_command("import_delivery", str(path))
    assert "row 3: lot D-1 has expiry" in capsys.readouterr().err


def test_missing_columns_and_missing_files_are_explained(catalogue, tmp_path, capsys):
    path = tmp_path / "delivery.csv"
    path.write_text("product,quantity\nHA 1%,3\n")
    with pytest.raises(CommandError):
        call_command("import_delivery", str(path))
    assert "no column lot_number, expiry_date, unit_cost" in capsys.readouterr().err
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_delivery", str(tmp_path / "absent.csv"))


def test_admin_upload_imports_or_lists_problems(manager_client, catalogue):
    url = reverse("admin:inventory_lot_import")
    bad = SimpleUploadedFile("d.csv", (HEADER + f"nope,X,{LATER},1,1,,\n").encode())
    response = manager_client.post(url, {"file": bad})
    assert "row 2: no product" in response.content.decode()
    assert not Lot.objects.exists()
    good = SimpleUploadedFile("d.csv", good_file().encode())
    response = manager_client.post(url, {"file": good})
    assert response.status_code == 302
    assert Lot.objects.count() == 2


def test_admin_upload_refuses_other_files(manager_client, catalogue):
    response = manager_client.post(
        reverse("admin:inventory_lot_import"), {"file": SimpleUploadedFile("d.xlsx", b"PK\x03\x04")}
    )
    assert "Upload a .csv file" in response.content.decode()


def test_row_numbers_count_blank_rows_as_a_spreadsheet_does(catalogue, tmp_path, capsys):
    path = tmp_path / "delivery.csv"
    path.write_text(HEADER + f"HA 1%,A-1,{LATER},1,1,,\n,,,,,,\n\nnope,X,{LATER},1,1,,\n")
    with pytest.raises(CommandError):
        call_command("import_delivery", str(path))
    assert "row 5: no product" in capsys.readouterr().err
