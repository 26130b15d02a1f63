"""The one cell writer of every export: text a spreadsheet would evaluate is text (a quote in
CSV, a string cell in XLSX); numbers, dates and times stay what they are; a CSV export's mark
comes off again on import."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime

import openpyxl

from hub.ledgers.base import table_csv, table_xlsx
from hub.ledgers.spreadsheet import read_csv_text

HOSTILE = ['=HYPERLINK("http://x","y")', "=1+1", "@SUM(1)", "+1", "-1+1", "\t=1+1", "\r=1+1"]
PLAIN = ["Staff 001", "鍵", "a=b", "", "'quoted"]
NUMBERS = [-5, 0, 12, -1.5, 3.25]
WHEN = [datetime(2025, 4, 1, 9, 30, 5), date(2025, 4, 1)]


def test_csv_marks_hostile_text_and_leaves_the_rest():
    body = table_csv(["a"], [[v] for v in HOSTILE + PLAIN + NUMBERS + WHEN])
    cells = [row[0] for row in csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""))][1:]
    assert cells[:len(HOSTILE)] == ["'" + v for v in HOSTILE]
    rest = cells[len(HOSTILE):]
    assert rest == PLAIN + ["-5", "0", "12", "-1.5", "3.25", "2025-04-01 09:30:05", "2025-04-01"]
    assert [read_csv_text(c) for c in cells[:len(HOSTILE) + len(PLAIN)]] == HOSTILE + PLAIN


def test_xlsx_writes_text_as_string_cells_and_numbers_as_numbers():
    body = table_xlsx(["a"], [([v], False) for v in HOSTILE + PLAIN + NUMBERS + WHEN], sheet="s", title="=title")
    ws = openpyxl.load_workbook(io.BytesIO(body)).active
    cells = [row[0] for row in ws.iter_rows(min_row=1)]
    assert all(c.data_type != "f" for c in cells)
    assert cells[0].value == "=title" and cells[0].data_type == "s"
    values = [c.value for c in cells[3:]]  # title, blank row, header
    assert values[:len(HOSTILE)] == [v.replace("\r", "\n") for v in HOSTILE]
    assert [c.data_type for c in cells[3:3 + len(HOSTILE)]] == ["s"] * len(HOSTILE)
    numbers = cells[3 + len(HOSTILE) + len(PLAIN):]
    assert [c.value for c in numbers[:len(NUMBERS)]] == NUMBERS
    assert {c.data_type for c in numbers[:len(NUMBERS)]} == {"n"}
    assert numbers[len(NUMBERS)].value == WHEN[0] and numbers[len(NUMBERS)].is_date
