"""CSV downloads. Every cell that a spreadsheet would read as a formula (starting with =, +, -,
@, a tab or a carriage return) is prefixed with an apostrophe, so an exported name or note
cannot run anything when a manager opens the file. Numbers are written as numbers."""

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

from django.http import HttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBERS = (int, float, Decimal)


def neutralise(value) -> object:
    # Plain strings and numbers, most cells of a long export, by their exact type first (a
    # third quicker than the isinstance checks below; an export has tens of thousands of cells).
    kind = type(value)
    if kind is str:
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    if kind in NUMBERS:
        return value
    if isinstance(value, NUMBERS):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_response(*, filename: str, header: Iterable[str], rows: Iterable[Iterable]) -> HttpResponse:
    # Written into one buffer and handed to the response once: a write per row into the
    # response cost as much as building the rows.
    buffer = io.StringIO()
    buffer.write("\ufeff")  # so spreadsheet programs read UTF-8
    writer = csv.writer(buffer)
    writer.writerow([neutralise(cell) for cell in header])
    writer.writerows([neutralise(cell) for cell in row] for row in rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
