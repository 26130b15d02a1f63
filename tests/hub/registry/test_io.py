"""Attendance import and export: CSV and .xlsx, every bad row reported, nothing imported
from a file with problems, export -> import round trip."""
from __future__ import annotations

import io
from datetime import date, datetime

import openpyxl
import pytest
from sqlalchemy import func, select

from hub import registry
from hub.store.schema import attendance, registry_log, training_sessions
from tests.support.registry_office import ACTOR, TODAY

PRIVACY = "個人情報保護研修"
MYNUMBER = "マイナンバー研修"


def seed(engine) -> None:
    """Three people and two trainings, as the office has them."""
    registry.add_person(engine, ACTOR, "001001", "職員 1001", kana="ショクイン イチ", section="戸籍係")
    registry.add_person(engine, ACTOR, "001002", "職員 1002", kana="ショクイン ニ", section="戸籍係",
                        employment="shokutaku")
    registry.add_person(engine, ACTOR, "001003", "職員 1003", kana="ショクイン サン", section="住民係",
                        employment="part_time")
    registry.add_training(engine, ACTOR, PRIVACY, ["cabinet", "shredder", "printer", "door"], 365)
    registry.add_training(engine, ACTOR, MYNUMBER, ["cabinet"], 730)


def counts(engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar()
                     for t in (training_sessions, attendance, registry_log))


def records(engine) -> list[tuple]:
    """Every attendance as (staff_no, training, held_on, place)."""
    out = []
    for session in registry.list_sessions(engine):
        roster = registry.session_roster(engine, session["id"])
        out += [(a["staff_no"], roster["training"], roster["held_on"], roster["place"])
                for a in roster["attendees"]]
    return sorted(out)


GOOD_CSV = (
    "職員番号,氏名,研修名,実施日,区分\r\n"
    "001001,職員 1001,個人情報保護研修,2025-04-10,正規\r\n"
    "001002,職員　1002,個人情報保護研修,2025-04-10,嘱託\r\n"  # a full-width space in the name
    "001003,職員 1003,マイナンバー研修,2025/5/1,パート\r\n"
    ",,,,\r\n"  # Excel leaves empty rows at the end
)


@pytest.mark.parametrize("bom", [False, True])
def test_good_csv_creates_sessions_and_attendance(engine, bom):
    seed(engine)
    data = GOOD_CSV.encode("utf-8-sig" if bom else "utf-8")

    report = registry.import_attendance(engine, ACTOR, data, filename="受講記録.csv", today=TODAY)

    assert (report.rows, report.sessions_created, report.attendance_added, report.already_recorded) == (3, 2, 3, 0)
    assert records(engine) == [
        ("001001", PRIVACY, date(2025, 4, 10), ""),
        ("001002", PRIVACY, date(2025, 4, 10), ""),
        ("001003", MYNUMBER, date(2025, 5, 1), ""),
    ]
    # Per session (the roster) and per person (their record).
    privacy = registry.find_session(engine, PRIVACY, "2025-04-10")
    assert [a["staff_no"] for a in registry.session_roster(engine, privacy)["attendees"]] == ["001001", "001002"]
    record = registry.person_record(engine, "001003")
    assert [(r["training"], r["held_on"], r["expires_on"]) for r in record] == [
        (MYNUMBER, date(2025, 5, 1), date(2027, 5, 1))]


def test_importing_the_same_file_again_changes_nothing(engine):
    seed(engine)
    registry.import_attendance(engine, ACTOR, GOOD_CSV.encode(), fmt="csv", today=TODAY)
    before = counts(engine)

    report = registry.import_attendance(engine, ACTOR, GOOD_CSV.encode(), fmt="csv", today=TODAY)

    assert (report.sessions_created, report.attendance_added, report.already_recorded) == (0, 0, 3)
    assert counts(engine) == before


def test_good_xlsx_with_english_header_excel_dates_and_number_cells(engine):
    seed(engine)
    book = openpyxl.Workbook()
    ws = book.active
    ws.append([])  # the header is the first row that is not empty
    ws.append(["staff_no", "name", "section", "training", "held_on", "employment"])
    ws.append([1001, "職員 1001", "戸籍係", PRIVACY, datetime(2025, 4, 10), "regular"])  # a number cell
    ws.append(["001002", "職員 1002", "戸籍係", PRIVACY, date(2025, 4, 10), None])
    ws.append(["001003", "職員 1003", "住民係", MYNUMBER, "2025-05-01", "part_time"])
    buffer = io.BytesIO()
    book.save(buffer)

    report = registry.import_attendance(engine, ACTOR, buffer.getvalue(), filename="attendance.xlsx",
                                        today=TODAY)

    assert (report.sessions_created, report.attendance_added) == (2, 3)
    assert records(engine) == [
        ("001001", PRIVACY, date(2025, 4, 10), ""),
        ("001002", PRIVACY, date(2025, 4, 10), ""),
        ("001003", MYNUMBER, date(2025, 5, 1), ""),
    ]


def test_every_bad_row_is_reported_and_nothing_is_imported(engine):
    seed(engine)
    before = counts(engine)
    data = (
        "職員番号,氏名,研修名,実施日,区分\n"
        "001001,職員 1001,個人情報保護研修,2025-04-10,正規\n"       # 2: fine
        "009999,誰か,個人情報保護研修,2025-04-10,正規\n"            # 3: unknown staff number
        "001002,職員 1002,情報セキュリティ研修,2025-04-10,嘱託\n"   # 4: unknown training
        "001003,職員 1003,個人情報保護研修,2025-13-01,パート\n"     # 5: bad date
        "001002,,個人情報保護研修,2025-04-10,\n"                   # 6: missing name
        "001001,職員 1001,個人情報保護研修,2025/4/10,\n"            # 7: duplicate of line 2
        "001003,職員 1004,個人情報保護研修,2025-04-11,アルバイト\n"  # 8: wrong name, bad employment
        "\n"                                                        # 9: empty, skipped
        "001003,職員 1003,個人情報保護研修,2025-06-03,\n"           # 10: in the future
        ",職員 1003,個人情報保護研修,,\n"                           # 11: two missing cells
    ).encode()

    with pytest.raises(registry.ImportRejected) as caught:
        registry.import_attendance(engine, ACTOR, data, fmt="csv", today=TODAY)

    assert [(p.line, p.column, p.reason) for p in caught.value.problems] == [
        (3, "職員番号", "unknown staff number 009999"),
        (4, "研修名", "unknown training '情報セキュリティ研修'"),
        (5, "実施日", "'2025-13-01' is not a date (YYYY-MM-DD)"),
        (6, "氏名", "missing value"),
        (7, "職員番号", "duplicate of line 2"),
        (8, "氏名", "'職員 1004' does not match staff number 001003 (職員 1003 in the registry)"),
        (8, "区分", "unknown employment type 'アルバイト' (正規, 嘱託 or パート)"),
        (10, "実施日", "2025-06-03 is in the future"),
        (11, "職員番号", "missing value"),
        (11, "実施日", "missing value"),
    ]
    assert "10 problem(s), nothing imported" in str(caught.value)
    assert "line 3: 職員番号: unknown staff number 009999" in str(caught.value)
    assert counts(engine) == before
    # The dry run reports the same.
    assert registry.check_attendance(engine, data, fmt="csv", today=TODAY) == caught.value.problems


def test_bad_xlsx_rows_are_reported_by_sheet_row(engine):
    seed(engine)
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["職員番号", "氏名", "研修名", "実施日"])
    ws.append(["001001", "職員 1001", PRIVACY, "10/4/2025"])
    ws.append([None, None, None, None])
    ws.append(["001002", "職員 1002", PRIVACY, 45757])  # a date typed as a bare number
    buffer = io.BytesIO()
    book.save(buffer)
    before = counts(engine)

    problems = registry.check_attendance(engine, buffer.getvalue(), today=TODAY)
    with pytest.raises(registry.ImportRejected):
        registry.import_attendance(engine, ACTOR, buffer.getvalue(), today=TODAY)

    assert [(p.line, p.column, p.reason) for p in problems] == [
        (2, "実施日", "'10/4/2025' is not a date (YYYY-MM-DD)"),
        (4, "実施日", "'45757' is not a date (YYYY-MM-DD)"),
    ]
    assert counts(engine) == before


def test_a_header_without_required_columns_is_refused(engine):
    seed(engine)
    data = "職員番号,名前,研修,実施日\n001001,職員 1001,個人情報保護研修,2025-04-10\n".encode()

    problems = registry.check_attendance(engine, data, fmt="csv", today=TODAY)

    assert [(p.line, p.column, p.reason) for p in problems] == [
        (1, "氏名/name", "column missing from the header"),
        (1, "研修名/training", "column missing from the header"),
    ]


@pytest.mark.parametrize("data, reason", [
    (b"", "the file is empty: no header row"),
    ("職員番号,氏名,研修名,実施日\n".encode(), "no rows under the header"),
    ("職員番号,氏名,研修名,実施日\n".encode("utf-16"), "not UTF-8 text: save the file as CSV UTF-8"),
])
def test_unusable_files_are_refused(engine, data, reason):
    seed(engine)
    assert [p.reason for p in registry.check_attendance(engine, data, fmt="csv", today=TODAY)] == [reason]


def test_not_a_workbook(engine):
    problems = registry.check_attendance(engine, b"PK\x03\x04 not really", today=TODAY)
    assert problems[0].line == 1 and problems[0].reason.startswith("not an Excel .xlsx file")


def test_shift_jis_csv_from_older_excel_is_read(engine):
    seed(engine)
    report = registry.import_attendance(engine, ACTOR, GOOD_CSV.encode("cp932"), fmt="csv", today=TODAY)
    assert report.attendance_added == 3


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_then_import_into_a_fresh_registry_gives_the_same_records(engine, make_engine_at, fmt):
    seed(engine)
    first = registry.add_session(engine, ACTOR, PRIVACY, "2025-04-10", place="3階会議室")
    registry.record_attendance(engine, ACTOR, first, ["001001", "001002"])
    second = registry.add_session(engine, ACTOR, PRIVACY, "2024-04-11", place="=HYPERLINK(\"x\")")
    registry.record_attendance(engine, ACTOR, second, ["001001", "001003"])
    third = registry.add_session(engine, ACTOR, MYNUMBER, "2025-05-01")
    registry.record_attendance(engine, ACTOR, third, ["001003"])
    exported = registry.export_attendance(engine, fmt)

    fresh = make_engine_at("fresh")
    seed(fresh)
    report = registry.import_attendance(fresh, ACTOR, exported, fmt=fmt, today=TODAY)

    assert (report.sessions_created, report.attendance_added) == (3, 5)
    assert records(fresh) == records(engine)
    assert len(records(fresh)) == 5
    assert registry.export_attendance(fresh, fmt) == exported or fmt == "xlsx"  # xlsx has timestamps


def test_export_layout(engine):
    seed(engine)
    session = registry.add_session(engine, ACTOR, PRIVACY, "2025-04-10", place="3階会議室")
    registry.record_attendance(engine, ACTOR, session, ["001002", "001001"])

    csv_text = registry.export_attendance(engine, "csv").decode("utf-8")
    english = registry.export_attendance(engine, "csv", lang="en").decode("utf-8-sig")
    book = openpyxl.load_workbook(io.BytesIO(registry.export_attendance(engine, "xlsx")))

    assert csv_text.startswith("\ufeff")  # Excel needs the BOM to read UTF-8
    assert csv_text.lstrip("\ufeff").splitlines() == [
        "職員番号,氏名,研修名,実施日,区分,場所",
        "001001,職員 1001,個人情報保護研修,2025-04-10,正規,3階会議室",
        "001002,職員 1002,個人情報保護研修,2025-04-10,嘱託,3階会議室",
    ]
    assert english.splitlines()[0] == "staff_no,name,training,held_on,employment,place"
    ws = book.active
    assert [c.value for c in ws[1]] == ["職員番号", "氏名", "研修名", "実施日", "区分", "場所"]
    assert ws["A2"].value == "001001" and ws["A2"].data_type == "s"
    assert ws["D2"].value == datetime(2025, 4, 10) and ws["D2"].is_date


def test_an_import_is_logged_and_announced_once(engine):
    seed(engine)
    seen = []
    registry.changes(engine).connect(seen.append)
    try:
        registry.import_attendance(engine, ACTOR, GOOD_CSV.encode(), fmt="csv", today=TODAY)
    finally:
        registry.changes(engine).disconnect(seen.append)

    assert len(seen) == 1
    assert sorted(seen[0].entities) == ["attendance", "session"]
    log = registry.history(engine, entity="attendance")
    assert len(log) == 3 and all(e.actor == ACTOR and e.before is None for e in log)
    assert {e.after["staff_no"] for e in log} == {"001001", "001002", "001003"}


def test_xlsx_attendees_by_badge_in_any_written_form_and_bad_badges_by_code(engine):
    seed(engine)
    registry.add_badge(engine, ACTOR, "001001", "012E4CD2A5B71F03")
    registry.add_badge(engine, ACTOR, "001002", "04A22B1A")
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["badge", "staff_no", "name", "training", "held_on"])
    ws.append(["０１２Ｅ－４ＣＤ２－Ａ５Ｂ７－１Ｆ０３", None, "職員 1001", PRIVACY, date(2025, 4, 10)])
    ws.append(["04 a2 2b 1a", "001002", "職員 1002", PRIVACY, date(2025, 4, 10)])
    buffer = io.BytesIO()
    book.save(buffer)

    report = registry.import_attendance(engine, ACTOR, buffer.getvalue(), filename="cards.xlsx", today=TODAY)

    assert report.attendance_added == 2
    assert records(engine) == [("001001", PRIVACY, date(2025, 4, 10), ""),
                               ("001002", PRIVACY, date(2025, 4, 10), "")]

    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["カードID", "氏名", "研修名", "実施日"])
    ws.append([1234567, "職員 1003", MYNUMBER, date(2025, 5, 1)])  # Excel dropped the leading 0
    ws.append(["04A22B", "職員 1003", MYNUMBER, date(2025, 5, 1)])
    ws.append(["04A22B1G", "職員 1003", MYNUMBER, date(2025, 5, 1)])
    ws.append([None, "職員 1003", MYNUMBER, date(2025, 5, 1)])
    buffer = io.BytesIO()
    book.save(buffer)
    before = counts(engine)

    with pytest.raises(registry.ImportRejected) as rejected:
        registry.import_attendance(engine, ACTOR, buffer.getvalue(), filename="cards.xlsx", today=TODAY)

    assert [(p.line, p.column, p.code, dict(p.params).get("digits")) for p in rejected.value.problems] == [
        (2, "カードID", "badge_id_odd_length", 7),
        (3, "カードID", "badge_id_length", 6),
        (4, "カードID", "badge_id_not_hex", None),
        (5, "カードID", "missing", None),
    ]
    assert rejected.value.problems[3].reason == "missing value"
    assert counts(engine) == before
