"""The key ledger (鍵の使用簿) an auditor checks: per cabinet and day, who unlocked, opened and
closed, for how long, who was flagged, who held the keys last, forced openings and taps that
did not open; exported as CSV (UTF-8 with BOM) and Excel with real date-times."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest
from openpyxl import load_workbook

from hub.ledger import key_ledger
from tests.hub.helpers import event
from tests.hub.web.conftest import HOLDER, STANDIN, csrf_from, store

DAY = date(2025, 4, 1)


def at(day: int, hms: str) -> str:
    return f"2025-04-{day:02d}T{hms}+09:00"


def use(station: str, seq: int, badge: str, person: str, day: int, unlocked: str, opened: str, closed: str,
        open_s: float, flagged: bool = False) -> list[tuple[str, dict]]:
    """What a cabinet sends for one key use: the tap, the door opening and closing, the use."""
    common = {"badge": badge, "person": person}
    return [
        ("event", event(station, seq, kind="badge.granted", at=at(day, unlocked), **common,
                        data={"flagged": flagged, "reason": "", "unlock_s": 5})),
        ("event", event(station, seq + 1, kind="door.opened", at=at(day, opened), **common,
                        data={"authorised": True, "flagged": flagged})),
        ("event", event(station, seq + 2, kind="door.closed", at=at(day, closed), **common,
                        data={"authorised": True, "open_s": open_s})),
        ("event", event(station, seq + 3, kind="key.used", at=at(day, closed), **common, data={
            "unlocked_at": at(day, unlocked), "opened_at": at(day, opened), "closed_at": at(day, closed),
            "duration_s": open_s, "flagged": flagged, "reason": ""})),
    ]


@pytest.fixture
def day_of_uses(engine):
    """One day at cabinet-1 (and a little at cabinet-2), stored through a real Ingest."""
    payloads = [
        *use("cabinet-1", 1, HOLDER, "S001", 1, "08:45:00", "08:45:02", "08:46:10", 68.0),
        *use("cabinet-1", 5, STANDIN, "S002", 1, "13:00:00", "13:00:03", "13:05:03", 300.0, flagged=True),
        # A tap that never opened the door.
        ("event", event("cabinet-1", 9, kind="badge.granted", at=at(1, "15:00:00"), badge=HOLDER,
                        person="S001", data={"flagged": False, "reason": "", "unlock_s": 5})),
        ("event", event("cabinet-1", 10, kind="unlock.expired", at=at(1, "15:00:05"), badge=HOLDER,
                        person="S001", data={"unlock_s": 5})),
        # Forced open at 18:00, closed 20 s later.
        ("event", event("cabinet-1", 11, kind="door.forced", at=at(1, "18:00:00"), badge=None, person=None,
                        data={})),
        ("event", event("cabinet-1", 12, kind="door.closed", at=at(1, "18:00:20"), badge=None, person=None,
                        data={"authorised": False, "open_s": 20.0})),
        # Taken before midnight, back after: the 1st's last use.
        *use("cabinet-1", 13, HOLDER, "S001", 1, "23:59:40", "23:59:45", "23:59:59", 14.0),
        # The next day: not in the 1st's ledger.
        *use("cabinet-1", 17, STANDIN, "S002", 2, "09:00:00", "09:00:02", "09:00:30", 28.0, flagged=True),
        *use("cabinet-2", 1, STANDIN, "S002", 1, "10:00:00", "10:00:01", "10:00:11", 10.0),
    ]
    ingest = store(engine, payloads)
    assert ingest.ingested == len(payloads) and ingest.quarantined == 0


def test_ledger_rows_for_a_cabinet_and_day(engine, cfg, day_of_uses):
    rows = key_ledger(engine, cfg, DAY, station="cabinet-1")
    assert [(r.entry, r.person, r.name) for r in rows] == [
        ("use", "S001", "Staff 001"),
        ("use", "S002", "Staff 002"),
        ("not_opened", "S001", "Staff 001"),
        ("forced", None, None),
        ("use", "S001", "Staff 001"),
    ]
    first, flagged, tap, forced, last = rows
    assert first.unlocked_at.isoformat() == "2025-04-01T08:45:00+09:00"
    assert first.opened_at.isoformat() == "2025-04-01T08:45:02+09:00"
    assert first.closed_at.isoformat() == "2025-04-01T08:46:10+09:00"
    assert first.duration_s == 68.0 and not first.flagged
    assert flagged.flagged and flagged.duration_s == 300.0
    assert tap.unlocked_at.isoformat() == "2025-04-01T15:00:00+09:00" and tap.opened_at is None
    assert forced.opened_at.isoformat() == "2025-04-01T18:00:00+09:00"
    assert forced.closed_at.isoformat() == "2025-04-01T18:00:20+09:00" and forced.duration_s == 20.0
    assert [r.last for r in rows] == [False, False, False, False, True]
    assert last.station_name == "Cabinet 1"


def test_every_cabinet_when_none_is_chosen(engine, cfg, day_of_uses):
    rows = key_ledger(engine, cfg, DAY)
    assert {r.station for r in rows} == {"cabinet-1", "cabinet-2"}
    # Each cabinet has its own last user.
    assert [(r.station, r.person) for r in rows if r.last] == [("cabinet-1", "S001"), ("cabinet-2", "S002")]


def test_ledger_page_highlights_the_last_user(as_supervisor, day_of_uses):
    page = as_supervisor.get("/ledger/keys?station=cabinet-1&day=2025-04-01").get_data(as_text=True)
    assert "鍵の使用簿" in page and "Staff 002" in page and "こじ開け" in page
    last_row = page.split('class="entry-use last"')[1].split("</tr>")[0]
    assert "本日最後の使用者" in last_row and "23:59:40" in last_row
    assert page.count("本日最後の使用者") == 1


def test_csv_export_opens_in_excel_with_japanese_headers(as_supervisor, day_of_uses):
    response = as_supervisor.get("/ledger/keys.csv?station=cabinet-1&day=2025-04-01")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="key-ledger_cabinet-1_2025-04-01.csv"' in response.headers["Content-Disposition"]
    assert response.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert len(rows) == 5
    assert rows[1]["氏名"] == "Staff 002" and rows[1]["要確認"] == "○"
    assert rows[1]["解錠時刻"] == "2025-04-01 13:00:00" and rows[1]["開いていた時間（秒）"] == "300.0"
    assert rows[2]["区分"] == "解錠のみ（扉は開けず）"
    assert rows[3]["区分"] == "こじ開け" and rows[3]["職員番号"] == ""
    assert rows[4]["本日最後の使用者"] == "○" and rows[4]["職員番号"] == "S001"


def test_xlsx_export_has_real_times_header_and_widths(as_supervisor, day_of_uses):
    response = as_supervisor.get("/ledger/keys.xlsx?station=cabinet-1&day=2025-04-01")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    assert sheet.title == "鍵の使用簿"
    header_row = next(r for r in range(1, 5) if sheet.cell(r, 1).value == "鍵保管庫")
    headers = [c.value for c in sheet[header_row]]
    assert headers[:5] == ["鍵保管庫", "日付", "区分", "職員番号", "氏名"]
    assert sheet.cell(header_row, 1).font.bold
    first = {h: c.value for h, c in zip(headers, sheet[header_row + 1], strict=True)}
    assert first["解錠時刻"] == datetime(2025, 4, 1, 8, 45, 0)  # a real date-time, site-local
    assert first["扉を閉めた時刻"] == datetime(2025, 4, 1, 8, 46, 10)
    assert first["開いていた時間（秒）"] == 68.0
    cell = sheet.cell(header_row + 1, headers.index("解錠時刻") + 1)
    assert cell.is_date and "hh:mm:ss" in cell.number_format
    last = {h: c.value for h, c in zip(headers, sheet[header_row + 5], strict=True)}
    assert last["本日最後の使用者"] == "○" and sheet.cell(header_row + 5, 1).font.bold
    assert sheet.column_dimensions["A"].width >= 10
    assert sheet.freeze_panes == f"A{header_row + 1}"


def test_english_exports_for_an_english_reader(as_supervisor, day_of_uses):
    page = as_supervisor.get("/").get_data(as_text=True)
    as_supervisor.post("/language", data={"lang": "en", "csrf_token": csrf_from(page)})
    rows = list(csv.DictReader(io.StringIO(
        as_supervisor.get("/ledger/keys.csv?station=cabinet-1&day=2025-04-01").data.decode("utf-8-sig"))))
    assert rows[0]["Name"] == "Staff 001" and rows[0]["Entry"] == "Key use"


def test_ledger_api(as_supervisor, day_of_uses):
    body = as_supervisor.get("/api/ledger/keys?station=cabinet-2&day=2025-04-01").get_json()
    assert body["day"] == "2025-04-01"
    [row] = body["rows"]
    assert (row["person"], row["name"], row["entry"], row["last"]) == ("S002", "Staff 002", "use", True)
    assert row["unlocked_at"] == "2025-04-01T10:00:00+09:00"


def test_a_day_without_uses_says_so(as_supervisor, day_of_uses):
    page = as_supervisor.get("/ledger/keys?day=2025-03-01").get_data(as_text=True)
    assert "この日の鍵の使用記録はありません。" in page
