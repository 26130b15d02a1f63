"""The to-confirm list as CSV and Excel: one row per person and document, headed in the
reader's language, the upload time in the site's zone."""
from __future__ import annotations

import io
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from hub.procedures import service
from hub.procedures.export import export_pending
from hub.procedures.model import ProcedureError
from tests.hub.procedures.conftest import ADMIN

TODAY = date(2025, 4, 10)
UPLOADED = datetime(2025, 4, 9, 15, 30, tzinfo=timezone.utc)  # 2025-04-10 00:30 in Tokyo


@pytest.fixture
def rows(engine):
    service.add_document(engine, ADMIN, "パート職員向け手順", "procedure", employments=["part_time"])
    v1 = service.upload_version(engine, ADMIN, "パート職員向け手順", "p.md", b"# v1\n", now=UPLOADED)
    service.confirm(engine, "sup-01", v1.id, ["0021"])
    return service.pending(engine, TODAY)


def test_csv_in_japanese(rows):
    text = export_pending(rows, "csv", "ja", ZoneInfo("Asia/Tokyo")).decode("utf-8-sig")
    header, line, *rest = text.splitlines()
    assert rest == []
    assert header.split(",")[:4] == ["文書", "現行の版", "登録日時", "職員番号"]
    assert line.split(",")[:5] == ["パート職員向け手順", "1", "2025-04-10 00:30:00", "0022", "職員0022"]


def test_xlsx_in_english(rows):
    book = load_workbook(io.BytesIO(export_pending(rows, "xlsx", "en", ZoneInfo("Asia/Tokyo"))))
    sheet = book.active
    values = [[c.value for c in r] for r in sheet.iter_rows()]
    assert values[0][:4] == ["Document", "Current version", "Uploaded at", "Staff number"]
    assert values[1][0] == "パート職員向け手順" and values[1][3] == "0022"
    assert values[1][2] == datetime(2025, 4, 10, 0, 30)
    assert len(values) == 2


def test_another_format_is_refused(rows):
    with pytest.raises(ProcedureError):
        export_pending(rows, "pdf", "ja", ZoneInfo("Asia/Tokyo"))
