"""CSV that people open in a spreadsheet. A cell that begins with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return is read there as a formula: a resource's Name tag or a service name
from an uploaded bill could then run one (``=HYPERLINK(...)`` sending the sheet's data away)
in the hands of whoever opens the export. Such a text cell is written with a leading ``'``,
which spreadsheets take as "this is text"; numbers, negative ones included, are left as they
are (OWASP's "CSV Injection" advice)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from decimal import Decimal

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_cell(value: object) -> str:
    """``value`` as a CSV cell: nothing for None, amounts as plain decimals (``0E-10`` reads
    ``0.0000000000``), and text that a spreadsheet would run as a formula kept as text."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:f}"  # its scale kept, never in exponent form
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_lines(rows: Iterable[Iterable[object]]) -> str:
    """The rows as CSV lines, each cell as ``spreadsheet_cell`` writes it."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([spreadsheet_cell(value) for value in row])
    return out.getvalue()
