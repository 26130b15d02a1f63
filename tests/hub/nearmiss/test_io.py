"""Near-miss cases in and out as CSV and Excel: an export imports back into another store
unchanged, a file with problems is refused whole with every problem named, and importing the
same file twice adds nothing."""
from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from hub.nearmiss import io as nearmiss_io
from hub.nearmiss import service
from hub.nearmiss.model import CaseInput
from hub.store import migrate
from hub.store.db import make_engine

JST = ZoneInfo("Asia/Tokyo")

PAPER = (
    "発生日時,ステーション,場所,分類,内容,原因,重大度,報告者,匿名,対策,備考\r\n"
    "2025/04/02 10:30,cabinet-1,,鍵,鍵を差したまま離席,呼ばれて急いだ,中程度,職員0031,,昼前に鍵を戻す,紙から転記\r\n"
    "2025-04-03 14:00,,窓口 2,窓口,別の人の書類を渡しかけた,番号札を確認しなかった,重大,,はい,,\r\n"
)


@pytest.fixture
def other_engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def _fields(cases) -> list[tuple]:
    return sorted(((c.occurred_at, c.station, c.place, c.category, c.what, c.why, c.severity, c.anonymous,
                   c.countermeasure, c.state) for c in cases), key=repr)


def test_a_paper_list_imports_with_its_countermeasures_as_reviewed(engine, cfg):
    report = nearmiss_io.import_cases(engine, cfg, "sup-01", PAPER.encode("utf-8"), filename="paper.csv")
    assert (report.rows, report.added, report.already) == (2, 2, 0)
    cases = sorted(service.list_cases(engine), key=lambda c: c.occurred_at)
    assert [(c.category, c.severity, c.state) for c in cases] == [("keys", "moderate", "reviewed"),
                                                                  ("counter", "serious", "filed")]
    assert cases[0].occurred_at == "2025-04-02T01:30:00.000000Z" and cases[0].reporter == "職員0031"
    assert cases[1].anonymous and cases[1].reporter == "sup-01"  # no name on the paper: who imported it
    again = nearmiss_io.import_cases(engine, cfg, "sup-01", PAPER.encode("utf-8"), filename="paper.csv")
    assert (again.added, again.already) == (0, 2)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_imports_back_into_another_store_unchanged(engine, cfg, other_engine, fmt):
    service.file_case(engine, cfg, CaseInput(occurred_at=datetime(2025, 4, 2, 10, 30, tzinfo=JST), category="pc",
                                             what="=HYPERLINK(\"http://x\")", why="pasted from mail",
                                             severity="minor", place="PC 3"), "staff-07")
    nearmiss_io.import_cases(engine, cfg, "sup-01", PAPER.encode("utf-8"), filename="paper.csv")
    body = nearmiss_io.export_cases(engine, cfg, fmt, role="supervisor", username="sup-01")
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(body)).active
        assert [c.value for c in sheet[1]][:3] == ["番号", "発生日時", "ステーション"]
        assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)  # text stays text
    report = nearmiss_io.import_cases(other_engine, cfg, "sup-02", body, filename=f"cases.{fmt}")
    assert report.added == 3
    assert _fields(service.list_cases(other_engine)) == _fields(service.list_cases(engine))


def test_an_anonymous_reporter_is_left_out_of_an_auditors_export(engine, cfg):
    nearmiss_io.import_cases(engine, cfg, "sup-01", PAPER.encode("utf-8"), filename="paper.csv")
    service.file_case(engine, cfg, CaseInput(occurred_at=datetime(2025, 4, 4, 9, 0, tzinfo=JST), category="mail",
                                             what="A parcel left at the door", why="no signature asked",
                                             severity="minor", place="受付", anonymous=True), "staff-07")
    for_auditor = nearmiss_io.export_cases(engine, cfg, "csv", role="auditor", username="aud-01").decode("utf-8-sig")
    for_supervisor = nearmiss_io.export_cases(engine, cfg, "csv", role="supervisor",
                                              username="sup-01").decode("utf-8-sig")
    assert "staff-07" not in for_auditor and "staff-07" in for_supervisor
    assert "職員0031" in for_auditor  # named on the paper, not anonymous


def test_a_file_with_problems_is_refused_whole_and_every_problem_is_named(engine, cfg):
    bad = ("発生日時,ステーション,場所,分類,内容,原因,重大度,匿名\r\n"
           "2025-04-02 10:30,cabinet-1,,鍵,ok,ok,軽微,\r\n"
           "yesterday,cabinet-99,,coffee,,ok,huge,maybe\r\n"
           "2025-04-02 10:30,,,鍵,x,y,軽微,\r\n")
    with pytest.raises(nearmiss_io.ImportRejected) as caught:
        nearmiss_io.import_cases(engine, cfg, "sup-01", bad.encode("utf-8"), filename="bad.csv")
    found = {(p.line, p.code) for p in caught.value.problems}
    assert found == {(3, "not_a_time"), (3, "unknown_station"), (3, "bad_category"), (3, "missing"),
                     (3, "bad_severity"), (3, "bad_choice"), (4, "no_place")}
    assert all(p.text("ja") and p.text("en") for p in caught.value.problems)
    assert service.list_cases(engine) == []


def test_a_file_that_is_not_a_table_is_refused(engine, cfg):
    with pytest.raises(nearmiss_io.ImportRejected) as caught:
        nearmiss_io.import_cases(engine, cfg, "sup-01", b"PK\x03\x04 not really a zip", filename="x.xlsx")
    assert [p.code for p in caught.value.problems] == ["not_xlsx"]
    with pytest.raises(nearmiss_io.ImportRejected) as caught:
        nearmiss_io.import_cases(engine, cfg, "sup-01", "内容,原因\r\na,b\r\n".encode(), filename="x.csv")
    assert {p.code for p in caught.value.problems} == {"column_missing"}
