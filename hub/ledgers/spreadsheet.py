"""The one writer of every CSV and Excel (.xlsx) cell the hub exports.

Names, print titles, places and user names come from people and stations the hub does not
control (the registry form, an import, an event's data over MQTT). A spreadsheet evaluates a
cell whose text starts with ``=``, ``+``, ``-`` or ``@`` (and some also after a leading tab or
carriage return) as a formula: ``=HYPERLINK("http://x","y")`` in a name becomes a live link in
the auditor's Excel. :func:`write_cell` is the only place a cell is written, so no export can
forget the rule:

- CSV: such text is prefixed with a single quote (``'=1+1``), which every spreadsheet shows as
  text; the rest of the value is kept as it was;
- XLSX: every string is a string cell (data_type ``s``), never a formula, with its text
  unchanged (characters a worksheet cannot hold, control characters, are left out).

Only strings are neutralised: numbers (counts, durations, negative numbers from the hub's own
numeric columns), dates and times stay numbers and dates.
"""
from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from hub.timetext import TIME_FORMAT

_LOG = logging.getLogger(__name__)

# Text starting with one of these is evaluated by Excel, LibreOffice or Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_PREFIX = "'"
TIME_TEXT = TIME_FORMAT  # the one format of every time shown (hub.timetext)


def is_formula_like(text: str) -> bool:
    """True if a spreadsheet would take ``text`` as a formula (or the start of one)."""
    return text.startswith(FORMULA_STARTS)


def csv_text(value: Any) -> Any:
    """A value as the CSV field :func:`write_cell` writes; numbers stay numbers."""
    kind = type(value)
    if kind is str:
        return CSV_PREFIX + value if value.startswith(FORMULA_STARTS) else value
    if kind is datetime and value.tzinfo is None and value.year >= 1000:
        # The same text as strftime(TIME_TEXT) for a naive time with a four-digit year, at a
        # fraction of its cost (a ledger export writes three a row).
        return value.isoformat(" ", "seconds")
    if isinstance(value, datetime):
        return value.strftime(TIME_TEXT)
    if isinstance(value, date):
        return value.isoformat()
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return value
    return csv_text(str(value))  # anything else (a lazy translation, an enum) is written as its text


def read_csv_text(text: str) -> str:
    """A CSV field as it was before :func:`write_cell` prefixed it, so an export imports back
    (``'=1+1`` -> ``=1+1``; a quote before anything else stays)."""
    if text.startswith(CSV_PREFIX) and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


def write_cell(line_or_sheet: Any, value: Any, row: int = 0, column: int = 0) -> Any:
    """Write ``value`` as one cell; the only way an export writes one.

    ``line_or_sheet`` is either a list (the CSV line being built: the field is appended and
    returned) or an openpyxl worksheet (the cell at ``row``, ``column`` is set and returned,
    for the caller to style).
    """
    if isinstance(line_or_sheet, list):
        text = csv_text(value)
        line_or_sheet.append(text)
        return text
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, str):
        cell = line_or_sheet.cell(row=row, column=column, value=ILLEGAL_CHARACTERS_RE.sub("", value))
        # openpyxl takes text starting with "=" for a formula (data_type "f"): made a string again.
        cell.data_type = "s"
        return cell
    if value is not None and not isinstance(value, (bool, int, float, date, datetime)):
        return write_cell(line_or_sheet, str(value), row, column)
    return line_or_sheet.cell(row=row, column=column, value=value)


def csv_line(values: Any) -> list[Any]:
    """A whole CSV line, each field through :func:`write_cell`."""
    line: list[Any] = []
    for value in values:
        write_cell(line, value)
    return line
