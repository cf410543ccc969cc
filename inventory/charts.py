"""Charts drawn on the server as SVG (pygal), served as images: no network, no script runs."""

from collections import OrderedDict
from decimal import Decimal

import pygal
from pygal.style import DefaultStyle

from .reports import FlowRow

MAX_SERIES = 8


PERIOD_FORMATS = {"month": "%m/%Y", "week": "%d/%m/%Y", "day": "%d/%m/%Y"}


class StackedBar(pygal.StackedBar):
    """pygal's stacked bars without what it writes into every bar for its JavaScript tooltips
    (three or four <desc> elements) or for printed values (off here). The chart is served as an
    image, where no script runs: those elements were half of the SVG's elements and a third
    of the time to draw it, for nothing anyone sees."""

    def _tooltip_and_print_values(self, *args, **kwargs) -> None:
        return None


def consumption_chart(
    rows: list[FlowRow], *, title: str, others_label: str, period: str = "month"
) -> str:
    """Stacked bars of consumption value per period, one series per group; the smallest groups
    beyond the eighth are summed as one."""
    periods = sorted({row.period for row in rows})
    totals: dict[object, Decimal] = {}
    labels: dict[object, str] = {}
    for row in rows:
        totals[row.key] = totals.get(row.key, Decimal(0)) + row.value
        labels[row.key] = str(row.label)
    ranked = sorted(totals, key=lambda key: totals[key], reverse=True)
    shown = ranked[:MAX_SERIES]
    series: OrderedDict[str, dict] = OrderedDict((labels[key], {}) for key in shown)
    if len(ranked) > MAX_SERIES:
        series[others_label] = {}
    for row in rows:
        name = labels[row.key] if row.key in shown else others_label
        series[name][row.period] = series[name].get(row.period, Decimal(0)) + row.value
    chart = StackedBar(
        js=[],
        disable_xml_declaration=True,
        style=DefaultStyle,
        width=900,
        height=360,
        title=title,
        x_label_rotation=30,
        legend_at_bottom=True,
        legend_at_bottom_columns=3,
        show_minor_x_labels=len(periods) <= 31,
        truncate_legend=30,
        print_values=False,
    )
    chart.x_labels = [day.strftime(PERIOD_FORMATS[period]) for day in periods]
    for name, values in series.items():
        chart.add(name, [float(values.get(period, 0)) for period in periods])
    return chart.render(is_unicode=True)
