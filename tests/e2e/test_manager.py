"""A manager receives deliveries three ways (typed, a CSV delivery note, a scanned GS1 code),
reads the stock reports and their chart, exports a CSV and runs a recall for a lot."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inventory.models import Lot, LotStatus
from tests.factories import ProductFactory, SupplierFactory
from treatments.models import SessionProduct

pytestmark = pytest.mark.django_db(transaction=True)

GTIN = "08437012999015"  # not one of the demo catalogue's


def test_manager(page, live_server, demo_clinic, login, shots):
    today = timezone.localdate()
    vitamin_c = ProductFactory(name="Vitamin C 20% (journey)", category="vitamin_cocktail")
    ha = ProductFactory(name="Hyaluronic acid 2% (journey)", gtin=GTIN)
    supplier = SupplierFactory(name="Meso Labs Ibérica")

    login("manager")
    expect(page).to_have_url(f"{live_server.url}/reports/")
    shots("reports")

    # A delivery line typed in.
    page.click("nav a:has-text('Receive stock')")
    page.select_option("#id_product", str(vitamin_c.pk))
    page.fill("#id_lot_number", "VC-TYPED")
    page.fill("#id_expiry_date", (today + timedelta(days=200)).isoformat())
    page.fill("#id_quantity", "12")
    page.fill("#id_unit_cost", "8.40")
    page.select_option("#id_supplier", str(supplier.pk))
    page.fill("#id_reference", "ALB-2026-118")
    shots("receive typed")
    page.click("input[name=receive]")
    expect(page.locator(".alert-success")).to_contain_text("Received")
    typed = Lot.objects.get(lot_number="VC-TYPED")
    assert (typed.product, typed.quantity_on_hand, typed.supplier) == (vitamin_c, 12, supplier)
    assert typed.movements.get().actor.username == "manager"

    # A delivery note uploaded as CSV: two lines, by GTIN and by name.
    page.click("a:has-text('Import a delivery note (CSV)')")
    expiry = (today + timedelta(days=400)).strftime("%d/%m/%Y")
    note = (
        "product;lot_number;expiry_date;quantity;unit_cost;supplier;reference\n"
        f"{GTIN};HA-CSV-1;{expiry};20;11,50;Meso Labs Ibérica;ALB-2026-119\n"
        f"Vitamin C 20% (journey);VC-CSV-2;{expiry};6;8,40;;ALB-2026-119\n"
    )
    page.set_input_files(
        "input[type=file]",
        files=[{"name": "delivery.csv", "mimeType": "text/csv", "buffer": note.encode()}],
    )
    shots("import delivery note")
    page.click("input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("Received 2 line(s).")
    assert Lot.objects.get(lot_number="HA-CSV-1").quantity_on_hand == 20
    assert Lot.objects.get(lot_number="VC-CSV-2").unit_cost == Decimal("8.40")

    # A box scanned: the wedge scanner types the DataMatrix, group separator included.
    page.goto(f"{live_server.url}/stock/receive/")
    scan_expiry = today + timedelta(days=500)
    page.fill("#id_scan", f"]d201{GTIN}10HA-SCAN-7\x1d17{scan_expiry:%y%m%d}")
    page.press("#id_scan", "Enter")
    expect(page.locator("#id_lot_number")).to_have_value("HA-SCAN-7")
    expect(page.locator("#id_expiry_date")).to_have_value(scan_expiry.isoformat())
    expect(page.locator("#id_product")).to_have_value(str(ha.pk))
    page.fill("#id_quantity", "4")
    page.fill("#id_unit_cost", "11.50")
    shots("receive scanned")
    page.click("input[name=receive]")
    expect(page.locator(".alert-success")).to_contain_text("HA-SCAN-7")
    scanned = Lot.objects.get(lot_number="HA-SCAN-7")
    assert (scanned.product, scanned.quantity_on_hand, scanned.expiry_date) == (ha, 4, scan_expiry)

    # The reports: on hand shows the new lots; consumption has its chart and a CSV.
    page.goto(f"{live_server.url}/reports/stock/on-hand/")
    expect(page.locator("main")).to_contain_text("Hyaluronic acid 2% (journey)")
    expect(page.locator("main")).to_contain_text("HA-SCAN-7")
    shots("on hand")
    page.goto(f"{live_server.url}/reports/stock/expiring/?within=90")
    expect(page.locator("h1")).to_contain_text("xpir")
    shots("expiring")
    page.goto(f"{live_server.url}/reports/stock/consumption/")
    chart = page.locator("figure img")
    expect(chart).to_be_visible()
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", chart.element_handle())
    shots("consumption")
    with page.expect_download() as download:
        page.click("a:has-text('Export CSV')")
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "Period,Group,Quantity,Value"
    consumed = {line.product.name for line in SessionProduct.objects.select_related("product")}
    assert len(lines) > 1 and any(name in "\n".join(lines) for name in consumed)
    page.goto(f"{live_server.url}/reports/stock/valuation/")
    expect(page.locator("main tr", has_text="Vitamin cocktail")).to_have_count(1)
    expect(page.locator("main tfoot")).to_contain_text("Total")
    shots("valuation")

    # A recall: the lot is recalled in the admin, and its list names everyone who received it.
    line = (
        SessionProduct.objects.filter(voided_at__isnull=True)
        .select_related("lot")
        .order_by("lot_id")
        .first()
    )
    lot = line.lot
    patients = {
        sp.session.course.patient.full_name
        for sp in SessionProduct.objects.filter(lot=lot, voided_at__isnull=True).select_related(
            "session__course__patient"
        )
    }
    page.goto(f"{live_server.url}/admin/inventory/lot/{lot.pk}/change/")
    page.click("a:has-text('Stock operation')")
    page.select_option("#id_operation", "recall")
    page.fill("#id_reason", "Supplier recall notice RC-2026-04")
    shots("recall operation")
    page.click("input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("Done.")
    lot.refresh_from_db()
    assert lot.status == LotStatus.RECALLED
    assert not Lot.objects.usable_on(today).filter(pk=lot.pk).exists()
    page.click("a:has-text('recall list')")
    expect(page.locator("h1")).to_contain_text(lot.lot_number)
    for name in patients:
        expect(page.locator("main")).to_contain_text(name)
    shots("recall list")
