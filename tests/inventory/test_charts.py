"""The consumption chart: what pygal would draw, without the tooltip data no one sees."""

from datetime import date
from decimal import Decimal
from xml.etree import ElementTree

import pygal

from inventory import charts
from inventory.reports import FlowRow

SVG = "{http://www.w3.org/2000/svg}"


def rows() -> list[FlowRow]:
    return [
        FlowRow(date(2026, month, 1), key, f"Product {key}", Decimal(key), Decimal(key * month))
        for month in (9, 10, 11)
        for key in range(1, 11)
    ]


def drawn(monkeypatch, graph) -> ElementTree.Element:
    monkeypatch.setattr(charts, "StackedBar", graph)
    svg = charts.consumption_chart(rows(), title="Consumption", others_label="Others")
    return ElementTree.fromstring(svg)


def visible(root: ElementTree.Element) -> list[tuple]:
    """Every shape and text, with where it is drawn (the chart's random id left out)."""
    return [
        (
            element.tag,
            (element.text or "").strip(),
            *(element.get(name) for name in ("x", "y", "width", "height", "d", "class")),
        )
        for element in root.iter()
        if element.tag in (f"{SVG}rect", f"{SVG}text", f"{SVG}path")
    ]


def test_the_chart_draws_what_pygal_draws_without_the_tooltip_data(monkeypatch):
    ours, pygals = drawn(monkeypatch, charts.StackedBar), drawn(monkeypatch, pygal.StackedBar)
    assert visible(ours) == visible(pygals)
    assert list(pygals.iter(f"{SVG}desc")) and not list(ours.iter(f"{SVG}desc"))
    # Eight products and "Others", over three months.
    bars = [e for e in ours.iter(f"{SVG}rect") if "rect" in (e.get("class") or "").split()]
    assert len(bars) == 9 * 3
    assert {t.text for t in ours.iter(f"{SVG}text")} >= {"Product 10", "Others", "Consumption"}
