from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory import services
from inventory.models import Lot, StockMovement
from tests.factories import ProductFactory, SupplierFactory, UserFactory, receive

pytestmark = pytest.mark.django_db

RECEIVE = reverse("stock:receive")
TODAY = timezone.localdate()
GTIN = "08437012345015"
SCAN = f"01{GTIN}17{(TODAY + timedelta(days=400)):%y%m%d}10LOT77"


@pytest.fixture
def ha():
    return ProductFactory(name="HA 1%", gtin=GTIN)


def test_manager_receives_a_typed_delivery_line(manager_client, manager_user, ha):
    supplier = SupplierFactory()
    response = manager_client.post(
        RECEIVE,
        {
            "product": ha.pk,
            "lot_number": "L-1",
            "expiry_date": (TODAY + timedelta(days=90)),
            "quantity": "12",
            "unit_cost": "8.40",
            "supplier": supplier.pk,
            "reference": "ALB-9",
        },
    )
    assert response.status_code == 302
    lot = Lot.objects.get()
    assert (lot.lot_number, lot.quantity_on_hand, lot.supplier) == ("L-1", 12, supplier)
    assert StockMovement.objects.get().actor == manager_user


def test_a_refusal_from_the_service_shows_on_the_form(manager_client, ha):
    response = manager_client.post(
        RECEIVE,
        {
            "product": ha.pk,
            "lot_number": "L-1",
            "expiry_date": (TODAY - timedelta(days=1)),
            "quantity": "12",
            "unit_cost": "8.40",
        },
    )
    assert response.status_code == 200
    assert "it cannot be received" in response.content.decode()
    assert not Lot.objects.exists()


def test_scanning_a_box_fills_in_product_lot_and_expiry(manager_client, ha):
    response = manager_client.get(RECEIVE, {"scan": SCAN})
    form = response.context["form"]
    assert form.initial["product"] == ha
    assert form.initial["lot_number"] == "LOT77"
    assert form.initial["expiry_date"] == TODAY.replace() + timedelta(days=400)


def test_a_scan_with_group_separators_as_a_wedge_scanner_types_it(manager_client, ha):
    text = f"]d201{GTIN}10LOT78\x1d17{(TODAY + timedelta(days=30)):%y%m%d}"
    response = manager_client.get(RECEIVE, {"scan": text})
    assert response.context["form"].initial["lot_number"] == "LOT78"


def test_the_printed_form_of_the_code_is_understood_too(manager_client, ha):
    text = f"(01){GTIN}(17){(TODAY + timedelta(days=30)):%y%m%d}(10)LOT79"
    response = manager_client.get(RECEIVE, {"scan": text})
    assert response.context["form"].initial["lot_number"] == "LOT79"


@pytest.mark.parametrize(
    ("scan", "message"),
    [
        ("hello world", "not a GS1 code"),
        ("0108437012345022", "No product has GTIN"),
        ("17270331", "no product number"),
        # Fourteen digits that are a valid GTIN, and also lot (10) 123456789019: the lot.
        ("10123456789019", "no product number"),
    ],
)
def test_bad_scans_say_what_is_wrong(manager_client, ha, scan, message):
    response = manager_client.get(RECEIVE, {"scan": scan})
    assert message in response.content.decode()
    assert response.context["form"].initial == {}


@pytest.mark.parametrize("barcode", ["4006381333931", "04006381333931"])
def test_a_boxs_plain_barcode_gives_the_product_and_asks_for_lot_and_expiry(
    manager_client, barcode
):
    """EAN-13 (or ITF-14) carries the GTIN alone; this one also reads as a GS1 order number
    (AI 400), which it is not."""
    product = ProductFactory(name="Lidocaine cream", gtin="04006381333931")  # as the admin keeps it
    response = manager_client.get(RECEIVE, {"scan": barcode}, follow=True)
    assert response.context["form"].initial["product"] == product
    assert "carries no lot number and expiry date" in response.content.decode()


def test_scanning_a_product_no_longer_active_says_so(manager_client, ha):
    ha.active = False
    ha.save()
    response = manager_client.get(RECEIVE, {"scan": SCAN})
    assert "is no longer active: it cannot be received" in response.content.decode()
    assert response.context["form"].initial == {}


def test_a_scan_without_a_lot_asks_for_it(manager_client, ha):
    response = manager_client.get(RECEIVE, {"scan": f"01{GTIN}"}, follow=True)
    assert "carries no lot number and expiry date" in response.content.decode()


def test_only_managers_receive(reception_client, practitioner_client):
    assert reception_client.get(RECEIVE).status_code == 403
    assert practitioner_client.get(RECEIVE).status_code == 403


def _stock(rows: int):
    actor = UserFactory(username="stocker")
    for n in range(rows):
        product = ProductFactory(category=["hyaluronic_acid", "consumable"][n % 2])
        lot = receive(
            product, quantity="10", actor=actor, occurred_at=timezone.now() - timedelta(days=20)
        )
        services.stock_consume(product=product, quantity=Decimal(2), on=TODAY, actor=actor)
        services.stock_discard(lot=lot, quantity=Decimal(1), reason="damaged", actor=actor)


REPORTS = [
    ("reports:stock_on_hand", {}),
    ("reports:stock_low", {}),
    ("reports:stock_expiring", {"within": "90"}),
    ("reports:stock_consumption", {"group": "user", "period": "week"}),
    ("reports:stock_consumption", {"group": "category", "period": "day"}),
    ("reports:stock_consumption_chart", {"group": "product", "period": "month"}),
    ("reports:stock_waste", {}),
    ("reports:stock_valuation", {}),
    ("reports:stock_valuation", {"date_to": (TODAY - timedelta(days=5)).isoformat()}),
    ("reports:stock_on_hand", {"format": "csv"}),
    ("reports:stock_consumption", {"format": "csv"}),
]


@pytest.mark.parametrize(("name", "query"), REPORTS)
def test_reports_run_a_fixed_number_of_queries(
    manager_client, django_assert_max_num_queries, name, query
):
    _stock(2)
    url = reverse(name)
    manager_client.get(url, query)
    with django_assert_max_num_queries(8) as few:
        assert manager_client.get(url, query).status_code == 200
    _stock(12)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert manager_client.get(url, query).status_code == 200


def test_lot_ledger_queries_do_not_grow_with_movements(
    manager_client, django_assert_max_num_queries
):
    product = ProductFactory()
    lot = receive(product, quantity="100")
    url = reverse("reports:stock_lot_ledger", args=[lot.pk])
    manager_client.get(url)
    with django_assert_max_num_queries(8) as few:
        manager_client.get(url)
    for n in range(15):
        services.stock_consume(
            product=product, quantity=Decimal(1), on=TODAY, actor=UserFactory(username=f"p{n}")
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = manager_client.get(url)
    assert len(response.context["movements"]) == 16


def test_report_filters_reject_a_reversed_date_range(manager_client):
    response = manager_client.get(
        reverse("reports:stock_waste"), {"date_from": "2026-05-01", "date_to": "2026-04-01"}
    )
    assert response.status_code == 400
    assert "start date is after the end date" in response.content.decode()


def test_consumption_csv_and_chart(manager_client):
    _stock(2)
    response = manager_client.get(
        reverse("reports:stock_consumption"), {"format": "csv", "group": "product"}
    )
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "Period,Group,Quantity,Value"
    assert len(lines) == 3
    chart = manager_client.get(reverse("reports:stock_consumption_chart"))
    assert chart["Content-Type"] == "image/svg+xml"
    body = chart.content.decode()
    assert body.startswith("<svg") and "Consumption at cost" in body
    assert "<script src=" not in body and "cdn" not in body.lower()


def test_csv_export_neutralises_formulas(manager_client):
    ProductFactory(name='=HYPERLINK("http://evil")', reorder_level=Decimal(5))
    response = manager_client.get(reverse("reports:stock_low"), {"format": "csv"})
    assert "'=HYPERLINK" in response.content.decode("utf-8-sig")


def test_reports_are_for_managers_only(reception_client, practitioner_client):
    for client in (reception_client, practitioner_client):
        assert client.get(reverse("reports:stock_on_hand")).status_code == 403


def test_on_hand_page_shows_products_lots_and_ledger_links(manager_client):
    product = ProductFactory(name="Vitamin C")
    lot = receive(product, lot_number="VC-1", quantity="3")
    page = manager_client.get(reverse("reports:stock_on_hand")).content.decode()
    assert "Vitamin C" in page and "VC-1" in page
    assert reverse("reports:stock_lot_ledger", args=[lot.pk]) in page


def test_expiring_takes_a_date_range_and_always_lists_expired_lots(manager_client):
    product = ProductFactory()
    soon = receive(product, lot_number="SOON", expiry=TODAY + timedelta(days=10))
    receive(product, lot_number="MID", expiry=TODAY + timedelta(days=50))
    receive(product, lot_number="FAR", expiry=TODAY + timedelta(days=120))
    Lot.objects.filter(pk=soon.pk).update(expiry_date=TODAY - timedelta(days=2))
    url = reverse("reports:stock_expiring")
    response = manager_client.get(
        url,
        {
            "date_from": (TODAY + timedelta(days=40)).isoformat(),
            "date_to": (TODAY + timedelta(days=130)).isoformat(),
        },
    )
    assert [lot.lot_number for lot in response.context["expired"]] == ["SOON"]
    assert [lot.lot_number for lot in response.context["expiring"]] == ["MID", "FAR"]
    default = manager_client.get(url, {"within": "60"})
    assert [lot.lot_number for lot in default.context["expiring"]] == ["MID"]
    assert default.context["form"].data["date_to"] == (TODAY + timedelta(days=60)).isoformat()


def test_expiring_with_a_start_or_an_end_alone(manager_client):
    product = ProductFactory()
    receive(product, lot_number="MID", expiry=TODAY + timedelta(days=50))
    receive(product, lot_number="FAR", expiry=TODAY + timedelta(days=120))
    url = reverse("reports:stock_expiring")

    def expiring(**query):
        response = manager_client.get(url, {k: v.isoformat() for k, v in query.items()})
        return response.status_code, [lot.lot_number for lot in response.context["expiring"]]

    # A start alone: the 30 days from it.
    assert expiring(date_from=TODAY + timedelta(days=100)) == (200, ["FAR"])
    # An end alone: from today to it.
    assert expiring(date_to=TODAY + timedelta(days=60)) == (200, ["MID"])
    # An end already past: no lot expires in that window; the expired ones are listed as always.
    assert expiring(date_to=TODAY - timedelta(days=5)) == (200, [])
    # A start after the end the user typed: refused, with the reason.
    response = manager_client.get(
        url,
        {
            "date_from": (TODAY + timedelta(days=9)).isoformat(),
            "date_to": (TODAY + timedelta(days=2)).isoformat(),
        },
    )
    assert response.status_code == 400
    assert "start date is after the end date" in response.content.decode()


def test_long_reports_are_paged_on_screen_and_whole_in_csv(manager_client):
    from inventory import views

    product = ProductFactory()
    lot = receive(product, quantity="500")
    actor = UserFactory(username="p")
    for _ in range(views.ROWS_PER_PAGE + 5):
        services.stock_consume(product=product, quantity=Decimal(1), on=TODAY, actor=actor)
    url = reverse("reports:stock_lot_ledger", args=[lot.pk])
    first = manager_client.get(url)
    assert len(first.context["page"].object_list) == views.ROWS_PER_PAGE
    second = manager_client.get(url, {"page": 2})
    assert len(second.context["page"].object_list) == 6
    csv = manager_client.get(url, {"format": "csv"}).content.decode("utf-8-sig")
    assert len(csv.splitlines()) == views.ROWS_PER_PAGE + 7


def test_on_hand_pages_products_and_its_links_keep_the_filter(manager_client):
    from inventory import views

    for _ in range(views.PRODUCTS_PER_PAGE + 3):
        ProductFactory(category="consumable")
    url = reverse("reports:stock_on_hand")
    first = manager_client.get(url, {"category": "consumable"})
    assert len(first.context["products"]) == views.PRODUCTS_PER_PAGE
    assert "?category=consumable&page=2" in first.content.decode()
    second = manager_client.get(url, {"category": "consumable", "page": 2})
    assert len(second.context["products"]) == 3


def test_waste_share_is_shown_to_a_tenth_of_a_percent_and_in_the_csv(manager_client):
    product = ProductFactory()
    lot = receive(product, quantity="300", cost="1")
    actor = UserFactory()
    services.stock_consume(product=product, quantity=Decimal(250), on=TODAY, actor=actor)
    services.stock_discard(lot=lot, quantity=Decimal(1), reason="damaged", actor=actor)
    url = reverse("reports:stock_waste")
    page = manager_client.get(url).content.decode()
    assert "<strong>0.4 %</strong>" in page
    csv = manager_client.get(url, {"format": "csv"}).content.decode("utf-8-sig").splitlines()
    assert csv[-1] == '"Waste as a share of consumption (at cost), %",,0.4'


def test_on_hand_csv_has_every_product_and_what_of_each_lot_is_usable(manager_client):
    ha = ProductFactory(name="HA 1%")
    receive(ha, lot_number="GOOD", quantity="4", cost="10")
    held = receive(ha, lot_number="HELD", quantity="2", cost="10")
    services.lot_quarantine(lot=held, actor=UserFactory(), reason="fridge alarm")
    ProductFactory(name="Needles", category="consumable", stock_unit="piece")
    csv = manager_client.get(reverse("reports:stock_on_hand"), {"format": "csv"})
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "Product,Category,Unit,Lot,Expiry,Status,Quantity,Usable,Unit cost,Value"
    rows = {
        cells[3] or cells[0]: [Decimal(cell) if cell else None for cell in cells[6:]]
        for cells in (line.split(",") for line in lines[1:])
    }
    assert rows["GOOD"] == [4, 4, 10, 40]
    assert rows["HELD"] == [2, 0, 10, 20]
    assert rows["Needles"] == [0, 0, None, 0]
