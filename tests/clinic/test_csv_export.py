"""What a CSV cell becomes: formulas defused, numbers kept as numbers, dates in ISO form."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from clinic.csv_export import neutralise


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_a_spreadsheet_would_run_is_defused(start):
    assert neutralise(f"{start}cmd|' /C calc'!A0") == f"'{start}cmd|' /C calc'!A0"
    # The same through a str subclass (a SafeString, say).
    assert neutralise(mark_safe(f"{start}1+1")) == f"'{start}1+1"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("Vitamin C", "Vitamin C"),
        ("", ""),
        (None, ""),
        (3, 3),
        (-2, -2),
        (1.5, 1.5),
        (Decimal("-4.000"), Decimal("-4.000")),
        (True, True),
        (date(2026, 3, 1), "2026-03-01"),
        (datetime(2026, 3, 1, 9, 30), "2026-03-01T09:30:00"),
        (gettext_lazy("Available"), "Available"),
    ],
)
def test_other_cells_are_written_as_they_are(value, written):
    result = neutralise(value)
    assert result == written and type(result) is type(written)
