"""The managers' stock pages: receiving, and the stock reports. Each report answers as a page,
as CSV (?format=csv), and the consumption report also as a chart (SVG)."""

from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import get_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from clinic import jinja
from clinic.csv_export import csv_response
from clinic.forms import add_service_errors
from clinic.substances import SubstanceCategory

from . import reports, services
from .charts import consumption_chart
from .forms import ReceiveForm, ReportFilterForm, ScanForm
from .models import Lot, LotStatus, MovementKind, StockUnit, WasteReason
from .scanning import scan_parse

PRODUCTS_PER_PAGE = 50
ROWS_PER_PAGE = 100


@permission_required("inventory.add_lot", raise_exception=True)
def receive(request: HttpRequest) -> HttpResponse:
    scan_form = ScanForm(request.GET or None)
    initial = {}
    if scan_form.is_valid():
        try:
            box = scan_parse(scan_form.cleaned_data["scan"])
        except ValidationError as error:
            scan_form.add_error("scan", error)
        else:
            initial = {
                "product": box.product,
                "lot_number": box.lot_number,
                "expiry_date": box.expiry_date,
                "supplier": box.product.default_supplier,
            }
            if box.missing:
                messages.warning(
                    request,
                    _("The code carries no %(missing)s: type it in.")
                    % {"missing": _(" and ").join(box.missing)},
                )
    form = ReceiveForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            movement = services.lot_receive(
                product=data["product"],
                lot_number=data["lot_number"],
                expiry_date=data["expiry_date"],
                quantity=data["quantity"],
                unit_cost=data["unit_cost"],
                supplier=data["supplier"],
                reference=data["reference"],
                actor=request.user,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request,
                _("Received %(quantity)s of %(lot)s.")
                % {"quantity": f"{movement.quantity.normalize():f}", "lot": movement.lot},
            )
            return redirect("stock:receive")
    return render(request, "inventory/receive.html", {"scan_form": scan_form, "form": form})


class Figures:
    """A report's numbers as the templates' `floatformat` filter writes them, in the request's
    language. Through the filter, which looks the language's formats up again for every cell,
    a few hundred rows took several times as long as the report's queries."""

    WIDE = Context(prec=60)  # room for any sum of money, as the filter allows

    def __init__(self) -> None:
        self.point = get_format("DECIMAL_SEPARATOR")
        # Grouped thousands only if the settings ask for them: then the filter itself.
        self.exact = not settings.USE_THOUSAND_SEPARATOR

    def quantity(self, value: Decimal | None) -> str:
        """As floatformat:"-3": a whole number bare, any other to three decimal places."""
        if self.exact and isinstance(value, Decimal) and value == value.to_integral_value():
            return str(int(value))
        return self._places(value, -3)

    def money(self, value: Decimal | None) -> str:
        """As floatformat:2."""
        return self._places(value, 2)

    def _places(self, value: Decimal | None, arg: int) -> str:
        if not (self.exact and isinstance(value, Decimal) and value.is_finite()):
            return floatformat(value, arg)
        rounded = value.quantize(QUANTA[abs(arg)], rounding=ROUND_HALF_UP, context=self.WIDE)
        text = f"{rounded.copy_abs() if rounded.is_zero() else rounded:f}"
        return text if self.point == "." else text.replace(".", self.point)


QUANTA = {2: Decimal("0.01"), 3: Decimal("0.001")}


def _day(day: date) -> str:
    """As the filter date:"d/m/Y"."""
    return f"{day:%d/%m/%Y}"


def _table_rows(template_name: str, **context) -> SafeString:
    """The rows of a long report table, drawn by Jinja2 (inventory/jinja2/), which escapes
    every value: Django's engine spent more time on a 700-row table than its query took.
    The rows carry no text of their own to translate; their labels come in `context`."""
    return mark_safe(jinja.render(template_name, context))


def _labels(choices) -> dict[str, str]:
    """Choice labels translated once a request, not once a row."""
    return {value: str(label) for value, label in choices}


def _lot_ledger_urls() -> Callable[[int], str]:
    """The ledger link of any lot from one reverse() a request rather than one a row: the URL
    of a marker id, cut around it (the path's int converter writes an id as its digits)."""
    marker = 987654321
    before, after = reverse("reports:stock_lot_ledger", args=[marker]).split(str(marker))
    return lambda lot_id: f"{before}{lot_id}{after}"


class StockReport(PermissionRequiredMixin, View):
    """Parses the filters, builds the report, answers as page or CSV."""

    permission_required = "clinic.view_reports"
    raise_exception = True
    template_name = ""
    title = ""
    filter_fields = ["date_from", "date_to", "category"]
    default_days = 30
    ahead = False  # the period left open runs from today on (ReportFilterForm)
    csv_name = "report"

    def get(self, request: HttpRequest, **kwargs) -> HttpResponse:
        form = self.filter_form()
        if not form.is_valid():
            context = {"form": form, "title": self.title, **self.subject(**kwargs)}
            return render(request, self.template_name, context, status=400)
        filters = form.cleaned_data
        context = self.build(filters, **kwargs)
        form.show_applied()
        if self.wants_csv():
            header, rows = self.csv(context)
            return csv_response(
                filename=f"{self.csv_name}-{filters['date_to']}.csv", header=header, rows=rows
            )
        query = request.GET.copy()
        query["format"] = "csv"
        context.update(
            form=form,
            filters=filters,
            title=self.title,
            csv_url=f"?{query.urlencode()}",
            today=timezone.localdate(),
        )
        context.update(self.lines(context, Figures()))
        return render(request, self.template_name, context)

    def wants_csv(self) -> bool:
        return self.request.GET.get("format") == "csv"

    def filter_form(self) -> ReportFilterForm:
        return ReportFilterForm(
            self.request.GET,
            fields=self.filter_fields,
            default_days=self.default_days,
            ahead=self.ahead,
        )

    def subject(self, **kwargs) -> dict:
        """What the report is of, from its URL (a lot), for the page even when the filters are
        refused."""
        return {}

    def build(self, filters: dict, **kwargs) -> dict:
        raise NotImplementedError

    def lines(self, context: dict, figures: Figures) -> dict:
        """For the page only: the rows it shows, their figures and dates already written out."""
        return {}

    def paginate(self, rows: list, per_page: int = ROWS_PER_PAGE) -> dict:
        """A page of the rows for the screen (the CSV has them all), and the query string
        its links keep."""
        query = self.request.GET.copy()
        query.pop("page", None)
        return {
            "page": Paginator(rows, per_page).get_page(self.request.GET.get("page")),
            "page_query": query.urlencode(),
        }

    def csv(self, context: dict) -> tuple[list[str], list[list]]:
        raise NotImplementedError


def _category(code: str) -> str:
    return str(SubstanceCategory(code).label)


class OnHand(StockReport):
    template_name = "inventory/reports/on_hand.html"
    title = gettext_lazy("Stock on hand")
    filter_fields = ["category"]
    csv_name = "on-hand"

    def build(self, filters, **kwargs):
        today = timezone.localdate()
        all_products = reports.on_hand(category=filters["category"], today=today, with_lots=False)
        paged = self.paginate(all_products, PRODUCTS_PER_PAGE)
        products = all_products if self.wants_csv() else list(paged["page"])
        reports.attach_lots(products)
        return {
            "products": products,
            **paged,
            "total_value": sum((p.value for p in all_products), Decimal(0)),
        }

    def lines(self, context, figures):
        today = timezone.localdate()
        categories, units = _labels(SubstanceCategory.choices), _labels(StockUnit.choices)
        statuses, ledger_url = _labels(LotStatus.choices), _lot_ledger_urls()
        usable_today = _("%(usable)s %(unit)s usable today")
        products = [
            (
                p.name,
                categories[p.category],
                usable_today % {"usable": figures.quantity(p.usable), "unit": units[p.stock_unit]},
                figures.quantity(p.on_hand),
                figures.money(p.value),
                [
                    (
                        ledger_url(lot.lot_id),
                        lot.lot_number,
                        _day(lot.expiry_date),
                        lot.expiry_date < today,
                        lot.status != LotStatus.AVAILABLE,
                        statuses[lot.status],
                        figures.quantity(lot.quantity),
                        figures.money(lot.value),
                    )
                    for lot in p.lots
                ],
            )
            for p in context["products"]
        ]
        return {
            "rows": _table_rows(
                "inventory/reports/on_hand_rows.html", products=products, expired=_("expired")
            ),
            "total_value": figures.money(context["total_value"]),
        }

    def csv(self, context):
        """A line a lot on the shelf, and one for each product with nothing on it, so that the
        file lists every product the page does; "usable" is what of a lot may be used today."""
        header = [
            _("Product"),
            _("Category"),
            _("Unit"),
            _("Lot"),
            _("Expiry"),
            _("Status"),
            _("Quantity"),
            _("Usable"),
            _("Unit cost"),
            _("Value"),
        ]
        today = timezone.localdate()
        categories, units = _labels(SubstanceCategory.choices), _labels(StockUnit.choices)
        statuses = _labels(LotStatus.choices)
        rows = []
        for p in context["products"]:
            product = [p.name, categories[p.category], units[p.stock_unit]]
            if not p.lots:
                rows.append([*product, "", "", "", Decimal(0), Decimal(0), "", Decimal(0)])
            for lot in p.lots:
                rows.append(
                    [
                        *product,
                        lot.lot_number,
                        lot.expiry_date,
                        statuses[lot.status],
                        lot.quantity,
                        lot.quantity if lot.is_usable_on(today) else Decimal(0),
                        lot.unit_cost,
                        lot.value,
                    ]
                )
        return header, rows


class LowStock(StockReport):
    template_name = "inventory/reports/low_stock.html"
    title = gettext_lazy("Low stock")
    filter_fields = ["category"]
    csv_name = "low-stock"

    def build(self, filters, **kwargs):
        return {
            "products": reports.low_stock(category=filters["category"], today=timezone.localdate())
        }

    def lines(self, context, figures):
        categories, units = _labels(SubstanceCategory.choices), _labels(StockUnit.choices)
        return {
            "lines": [
                (
                    p.name,
                    categories[p.category],
                    figures.quantity(p.usable),
                    units[p.stock_unit],
                    figures.quantity(p.on_hand),
                    figures.quantity(p.reorder_level),
                )
                for p in context["products"]
            ]
        }

    def csv(self, context):
        categories, units = _labels(SubstanceCategory.choices), _labels(StockUnit.choices)
        return (
            [_("Product"), _("Category"), _("Unit"), _("Usable"), _("On hand"), _("Reorder level")],
            [
                [
                    p.name,
                    categories[p.category],
                    units[p.stock_unit],
                    p.usable,
                    p.on_hand,
                    p.reorder_level,
                ]
                for p in context["products"]
            ],
        )


class Expiring(StockReport):
    template_name = "inventory/reports/expiring.html"
    title = gettext_lazy("Expiring and expired lots")
    csv_name = "expiring"
    ahead = True
    WINDOWS = (30, 60, 90)

    def build(self, filters, **kwargs):
        """The expiry window is `within` days from today (30, 60 or 90), or the dates given (a
        start or an end alone as ReportFilterForm reads them ahead)."""
        today = timezone.localdate()
        if self.request.GET.get("date_from") or self.request.GET.get("date_to"):
            since, until, within = filters["date_from"], filters["date_to"], None
        else:
            try:
                within = int(self.request.GET.get("within", 30))
            except ValueError:
                within = 30
            within = within if within in self.WINDOWS else 30
            since, until = today, today + timezone.timedelta(days=within)
        filters.update(date_from=since, date_to=until)
        lots = reports.expiring(category=filters["category"], today=today, since=since, until=until)
        query = self.request.GET.copy()
        for name in ("within", "date_from", "date_to"):
            query.pop(name, None)
        return {
            "expired": [lot for lot in lots if lot.days_left < 0],
            "expiring": [lot for lot in lots if lot.days_left >= 0],
            "within": within,
            "since": since,
            "until": until,
            "windows": self.WINDOWS,
            "base_query": query.urlencode(),
        }

    def lines(self, context, figures):
        units, statuses = _labels(StockUnit.choices), _labels(LotStatus.choices)
        ledger_url = _lot_ledger_urls()

        def line(lot: reports.ExpiringLot) -> tuple:
            return (
                lot.product,
                ledger_url(lot.lot_id),
                lot.lot_number,
                _day(lot.expiry_date),
                lot.days_left,
                statuses[lot.status],
                f"{figures.quantity(lot.quantity)} {units[lot.stock_unit]}",
                figures.money(lot.value),
            )

        return {
            "expired_rows": _table_rows(
                "inventory/reports/lot_rows.html", lots=map(line, context["expired"])
            ),
            "expiring_rows": _table_rows(
                "inventory/reports/lot_rows.html", lots=map(line, context["expiring"])
            ),
        }

    def csv(self, context):
        units, statuses = _labels(StockUnit.choices), _labels(LotStatus.choices)
        return (
            [
                _("Product"),
                _("Lot"),
                _("Expiry"),
                _("Days left"),
                _("Status"),
                _("Quantity"),
                _("Unit"),
                _("Value"),
            ],
            [
                [
                    lot.product,
                    lot.lot_number,
                    lot.expiry_date,
                    lot.days_left,
                    statuses[lot.status],
                    lot.quantity,
                    units[lot.stock_unit],
                    lot.value,
                ]
                for lot in context["expired"] + context["expiring"]
            ],
        )


PERIOD_FORMATS = {"month": "%m/%Y", "week": "%d/%m/%Y", "day": "%d/%m/%Y"}


class Consumption(StockReport):
    template_name = "inventory/reports/consumption.html"
    title = gettext_lazy("Consumption")
    filter_fields = ["date_from", "date_to", "category", "group", "period"]
    default_days = 90
    csv_name = "consumption"

    def rows(self, filters: dict) -> list[reports.FlowRow]:
        """The whole report, for the CSV and the chart."""
        return self.labelled(
            filters,
            reports.consumption(
                date_from=filters["date_from"],
                date_to=filters["date_to"],
                category=filters["category"],
                group=filters["group"],
                period=filters["period"],
            ),
        )

    @staticmethod
    def labelled(filters: dict, rows: list[reports.FlowRow]) -> list[reports.FlowRow]:
        if filters["group"] != "category":
            return rows
        categories = _labels(SubstanceCategory.choices)
        return [row._replace(label=categories[row.key]) for row in rows]

    def build(self, filters, **kwargs):
        if self.wants_csv():
            return {"rows": self.rows(filters)}
        try:
            number = int(float(self.request.GET.get("page") or 1))
        except (TypeError, ValueError, OverflowError):
            number = 1
        report = reports.consumption_page(
            date_from=filters["date_from"],
            date_to=filters["date_to"],
            category=filters["category"],
            group=filters["group"],
            period=filters["period"],
            number=number,
            per_page=ROWS_PER_PAGE,
        )
        # The page as Paginator.get_page() would give it, its rows read by the query.
        pages = Paginator(range(report.count), ROWS_PER_PAGE)
        page = Page(self.labelled(filters, report.rows), report.number, pages)
        page_query, chart_query = self.request.GET.copy(), self.request.GET.copy()
        page_query.pop("page", None)
        chart_query.pop("format", None)
        return {
            "page": page,
            "page_query": page_query.urlencode(),
            "chart_url": f"{reverse('reports:stock_consumption_chart')}?{chart_query.urlencode()}",
            "total_value": report.total_value,
        }

    def lines(self, context, figures):
        period = PERIOD_FORMATS[context["filters"]["period"]]
        return {
            "lines": [
                (
                    format(row.period, period),
                    row.label,
                    figures.quantity(row.quantity),
                    figures.money(row.value),
                )
                for row in context["page"]
            ],
            "total_value": figures.money(context["total_value"]),
        }

    def csv(self, context):
        return (
            [_("Period"), _("Group"), _("Quantity"), _("Value")],
            [[row.period, row.label, row.quantity, row.value] for row in context["rows"]],
        )


class ConsumptionChart(Consumption):
    def get(self, request, **kwargs):
        form = self.filter_form()
        if not form.is_valid():
            return HttpResponse(status=400)
        svg = consumption_chart(
            self.rows(form.cleaned_data),
            title=_("Consumption at cost"),
            others_label=_("Others"),
            period=form.cleaned_data["period"],
        )
        response = HttpResponse(svg, content_type="image/svg+xml")
        response["Cache-Control"] = "private, max-age=60"
        return response


class Waste(StockReport):
    template_name = "inventory/reports/waste.html"
    title = gettext_lazy("Waste")
    default_days = 90
    csv_name = "waste"

    def build(self, filters, **kwargs):
        report = reports.waste(
            date_from=filters["date_from"], date_to=filters["date_to"], category=filters["category"]
        )
        reasons = [
            (WasteReason(reason).label, quantity, value)
            for reason, quantity, value in report.by_reason
        ]
        return {"report": report, "reasons": reasons}

    def lines(self, context, figures):
        share = context["report"].share_percent
        return {"share": None if share is None else floatformat(share, 1)}

    def csv(self, context):
        report = context["report"]
        rows = [[label, quantity, value] for label, quantity, value in context["reasons"]]
        rows.append([_("Consumption"), report.consumption_quantity, report.consumption_value])
        rows.append([_("Waste as a share of consumption (at cost), %"), "", report.share_percent])
        return [_("Reason"), _("Quantity"), _("Value")], rows


class Valuation(StockReport):
    template_name = "inventory/reports/valuation.html"
    title = gettext_lazy("Stock valuation")
    filter_fields = ["date_to", "category"]
    csv_name = "valuation"

    def build(self, filters, **kwargs):
        rows = reports.valuation(
            as_of=filters["date_to"], today=timezone.localdate(), category=filters["category"]
        )
        for row in rows:
            row.label = _category(row.category)
        return {
            "rows": rows,
            "as_of": filters["date_to"],
            "total": sum((row.value for row in rows), Decimal(0)),
        }

    def csv(self, context):
        return (
            [_("Category"), _("Lots"), _("Quantity"), _("Value")],
            [[row.label, row.lots, row.quantity, row.value] for row in context["rows"]],
        )


class LotLedger(StockReport):
    template_name = "inventory/reports/lot_ledger.html"
    title = gettext_lazy("Ledger of a lot")
    filter_fields = ["date_from", "date_to"]
    default_days = 3650
    csv_name = "lot-ledger"

    def subject(self, *, pk, **kwargs):
        return {"lot": get_object_or_404(Lot.objects.select_related("product", "supplier"), pk=pk)}

    def build(self, filters, *, pk, **kwargs):
        lot = self.subject(pk=pk)["lot"]
        movements = reports.lot_ledger(
            lot=lot, date_from=filters["date_from"], date_to=filters["date_to"]
        )
        # The CSV has every line; the page reads only its own (a count and one page).
        paged = {} if self.wants_csv() else self.paginate(movements)
        return {"lot": lot, "movements": movements, **paged}

    def lines(self, context, figures):
        kinds, reasons = _labels(MovementKind.choices), _labels(WasteReason.choices)
        lines = [
            (
                f"{timezone.localtime(m.occurred_at):%d/%m/%Y %H:%M}",
                kinds[m.kind],
                m.reverses_id,
                figures.quantity(m.quantity),
                figures.quantity(m.balance),
                m.actor_name or m.actor_username,
                reasons.get(m.waste_reason, ""),
                m.reason,
                m.reference,
            )
            for m in context["page"]
        ]
        return {
            "rows": _table_rows(
                "inventory/reports/ledger_rows.html", lines=lines, reversal=_("reversal")
            )
        }

    def csv(self, context):
        kinds, reasons = _labels(MovementKind.choices), _labels(WasteReason.choices)
        return (
            [
                _("When"),
                _("Kind"),
                _("Quantity"),
                _("Balance"),
                _("By"),
                _("Reason"),
                _("Reference"),
            ],
            [
                [
                    timezone.localtime(m.occurred_at),
                    kinds[m.kind],
                    m.quantity,
                    m.balance,
                    m.actor_username,
                    reasons.get(m.waste_reason) or m.reason,
                    m.reference,
                ]
                for m in context["movements"]
            ],
        )
