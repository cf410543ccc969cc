"""How the stock report pages write their figures, cut periods and show their filters."""

from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils import timezone, translation

from inventory import reports, services
from inventory.views import Figures
from tests.factories import ProductFactory, UserFactory, receive

TODAY = timezone.localdate()

FIGURES = [
    "0",
    "0.000",
    "-0.0004",
    "5",
    "5.000",
    "-12",
    "1.5",
    "-1.5",
    "0.0005",
    "0.0004",
    "2.345",
    "2.3449",
    "-2.345",
    "0.005",
    "-0.005",
    "-0.004",
    "1234567.89123",
    "16203459.07000",
    "99999999999.99999",
]


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("text", FIGURES)
def test_figures_are_written_as_the_floatformat_filter_writes_them(language, text):
    value = Decimal(text)
    with translation.override(language):
        figures = Figures()
        assert figures.quantity(value) == floatformat(value, "-3")
        assert figures.money(value) == floatformat(value, 2)


def test_figures_follow_the_language():
    with translation.override("es"):
        assert Figures().money(Decimal("12.5")) == "12,50"


def at(day):
    return timezone.make_aware(datetime.combine(day, time(10)))


@pytest.mark.django_db
def test_consumption_per_month_over_days_on_both_sides_of_a_month_end():
    """A period shorter than a month that straddles two months has no whole month: its days
    come from the daily rollup, each under its own month."""
    product = ProductFactory()
    ana = UserFactory(username="ana")
    month_start = (TODAY.replace(day=1) - timedelta(days=1)).replace(day=1)  # last month's 1st
    receive(
        product, quantity="100", cost="2", actor=ana, occurred_at=at(month_start - timedelta(60))
    )
    for back, quantity in ((3, 1), (1, 2), (0, 4)):  # before the 1st, then on it
        day = month_start - timedelta(days=back)
        services.stock_consume(
            product=product, quantity=Decimal(quantity), on=day, actor=ana, occurred_at=at(day)
        )
    services.stock_consume(
        product=product,
        quantity=Decimal(8),
        on=month_start + timedelta(days=2),
        actor=ana,
        occurred_at=at(month_start + timedelta(days=2)),
    )
    window = {"date_from": month_start - timedelta(days=5), "date_to": month_start + timedelta(3)}
    assert reports.Span.of(**window).months is None
    rows = reports.consumption(**window, group="product", period="month")
    previous = (month_start - timedelta(days=1)).replace(day=1)
    assert [(r.period, r.label, r.quantity, r.value) for r in rows] == [
        (previous, product.name, 3, 6),
        (month_start, product.name, 12, 24),
    ]


@pytest.mark.django_db
def test_consumption_page_shows_its_rows_figures_in_the_language(manager_client):
    product = ProductFactory(name="Vitamin C")
    ana = UserFactory(username="ana")
    receive(product, quantity="10", cost="2.25", actor=ana, occurred_at=at(TODAY - timedelta(9)))
    services.stock_consume(product=product, quantity=Decimal("1.5"), on=TODAY, actor=ana)
    page = manager_client.get(
        reverse("reports:stock_consumption"),
        {"group": "product", "period": "week"},
        HTTP_ACCEPT_LANGUAGE="es",
    ).content.decode()
    week = TODAY - timedelta(days=TODAY.weekday())
    assert f"semana del {week:%d/%m/%Y}</td><td>Vitamin C</td>" in page
    assert '<td class="text-end">1,500</td><td class="text-end">3,38</td>' in page


@pytest.mark.django_db
def test_report_filters_mark_the_field_in_error(manager_client):
    response = manager_client.get(
        reverse("reports:stock_consumption"), {"date_from": "soon", "group": "product"}
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert 'class="dateinput form-control is-invalid"' in page
    assert '<span id="error_1_id_date_from"><strong>Enter a valid date.</strong></span>' in page
    assert 'class="select form-select" id="id_group"' in page


@pytest.mark.django_db
def test_consumption_is_paged_in_the_database_with_the_whole_reports_total(
    manager_client, monkeypatch
):
    from inventory import views

    monkeypatch.setattr(views, "ROWS_PER_PAGE", 2)
    ana = UserFactory(username="ana")
    for name, quantity in (("A", 1), ("B", 2), ("C", 3)):
        product = ProductFactory(name=name)
        receive(product, quantity="10", cost="1", actor=ana, occurred_at=at(TODAY - timedelta(5)))
        services.stock_consume(product=product, quantity=Decimal(quantity), on=TODAY, actor=ana)
    url = reverse("reports:stock_consumption")

    def shown(page):
        context = manager_client.get(url, {"period": "day", "page": page}).context
        return [row.label for row in context["page"]], context["page"].number, context["lines"]

    assert shown(1)[:2] == (["A", "B"], 1)
    assert shown(2)[:2] == (["C"], 2)
    assert shown(9)[:2] == (["C"], 2)  # past the last page: the last, as Paginator gives it
    assert shown("soon")[:2] == (["A", "B"], 1)
    # Past any offset the database can take: still the last page.
    for huge in ("99999999999999999999", "1e300", "92233720368547759"):
        assert shown(huge)[:2] == (["C"], 2)
    first = manager_client.get(url, {"period": "day"})
    assert first.context["total_value"] == "6.00"
    assert first.context["page"].paginator.num_pages == 2
    csv = manager_client.get(url, {"period": "day", "format": "csv"}).content.decode("utf-8-sig")
    assert len(csv.splitlines()) == 4


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("reports:stock_on_hand", {}),
        ("reports:stock_low", {}),
        ("reports:stock_expiring", {}),
        ("reports:stock_consumption", {}),
        ("reports:stock_consumption", {"group": "category", "period": "day"}),
        ("reports:stock_consumption", {"group": "user", "period": "week"}),
        ("reports:stock_consumption", {"format": "csv"}),
        ("reports:stock_consumption_chart", {}),
        ("reports:stock_waste", {}),
        ("reports:stock_valuation", {}),
    ],
)
@pytest.mark.django_db
def test_every_report_opens_on_the_demo_clinic_whatever_the_database(client, name, query):
    """The reports' hand-built SQL comes back as floats and text on SQLite (the demo's
    database) and as decimals and dates on PostgreSQL; both must give a page."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    client.force_login(get_user_model().objects.get(username="manager"))

    response = client.get(reverse(name), query)

    assert response.status_code == 200
    assert response.content


@pytest.mark.django_db
def test_a_lot_ledger_with_refused_filters_still_shows_the_lot(manager_client):
    lot = receive(ProductFactory(name="HA 1%"), lot_number="L-7")
    for query in (
        {"date_from": "2024-05-01", "date_to": "2024-04-01"},
        {"date_from": "2024-13-01"},
    ):
        response = manager_client.get(reverse("reports:stock_lot_ledger", args=[lot.pk]), query)
        assert response.status_code == 400
        page = response.content.decode()
        assert "L-7" in page and reverse("reports:stock_lot_recall", args=[lot.pk]) in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "args", "title"),
    [
        ("reports:stock_on_hand", [], "Existencias actuales"),
        ("reports:stock_low", [], "Existencias bajas"),
        ("reports:stock_valuation", [], "Valoración de existencias"),
    ],
)
def test_report_titles_are_in_the_language_of_the_request(manager_client, name, args, title):
    page = manager_client.get(reverse(name, args=args), HTTP_ACCEPT_LANGUAGE="es").content
    assert f'<h1 class="h3 mb-0">{title}</h1>' in page.decode()
