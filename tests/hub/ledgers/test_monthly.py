"""The monthly self-inspection report (自己点検報告) of a site, from a month of real events (real
payloads through a real Ingest into a real SQLite file): the PDF's text (pdftotext) and the
Excel workbook give the figures the database holds."""
from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from hub import registry
from hub.ledgers import monthly, monthly_render
from tests.support.alert_stack import Stack, ev
from tests.hub.helpers import SITE, status

MONTH = "2025-04"
BEFORE = datetime(2025, 3, 20, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
STATIONS = [
    {"id": "cabinet-1", "site": SITE, "kind": "cabinet", "name": "鍵保管庫1"},
    {"id": "shredder-1", "site": SITE, "kind": "shredder", "name": "シュレッダー2F"},
    {"id": "printer-1", "site": SITE, "kind": "printer", "name": "プリンター2F"},
]
pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) missing")


def at(day: int, clock: str) -> str:
    return f"2025-04-{day:02d}T{clock}+09:00"


def use(seq: int, day: int, clock: str, person: str, flagged: bool = False):
    return ev("cabinet-1", seq, "key.used", at(day, clock), person=person, data={
        "unlocked_at": at(day, clock), "opened_at": at(day, clock), "closed_at": at(day, clock),
        "duration_s": 60, "flagged": flagged})


def a_month_of_work(s: Stack) -> None:
    """April 2025 at the ward: the holder, the stand-in and someone else use the keys (once at
    07:10, before hours), a door held open, two shreddings, one print release of two jobs; one
    key use in May that the April report must not count."""
    for number, name in (("S001", "職員 0001"), ("S002", "職員 0002"), ("S003", "職員 0003")):
        registry.add_person(s.engine, "admin", number, name)
    # Designated before the month (the report counts the designations of the time of each use).
    registry.set_holder(s.engine, "admin", "cabinet-1", "S001", now=BEFORE)
    registry.add_stand_in(s.engine, "admin", "cabinet-1", "S002", now=BEFORE)
    registry.add_training(s.engine, "admin", "個人情報保護研修", ["cabinet"], 365)
    session = registry.add_session(s.engine, "admin", "個人情報保護研修", date(2024, 5, 10))
    registry.record_attendance(s.engine, "admin", session, ["S001", "S002"])
    shred = {"people": ["S001", "S002"], "badges": ["0123456789ABCDEF", "1111222233334444"], "max_s": 600}
    s.feed(
        *(("status", st["id"], {**status(st["id"], "online"), "kind": None}) for st in STATIONS),
        use(1, 1, "10:00:00", "S001"), use(2, 2, "11:00:00", "S001"), use(3, 3, "07:10:00", "S001"),
        use(4, 8, "14:00:00", "S002"), use(5, 9, "15:00:00", "S003", flagged=True),
        ev("cabinet-1", 6, "key.used", "2025-05-01T10:00:00+09:00", person="S001", data={
            "unlocked_at": "2025-05-01T10:00:00+09:00", "opened_at": "2025-05-01T10:00:00+09:00",
            "closed_at": "2025-05-01T10:01:00+09:00", "duration_s": 60, "flagged": False}),
        ev("cabinet-1", 7, "door.held_open", at(10, "12:00:00"), person="S002",
           data={"open_s": 300, "limit_s": 120, "authorised": True}),
        ev("shredder-1", 1, "shred.started", at(1, "15:00:00"), data=shred),
        ev("shredder-1", 2, "shred.ended", at(1, "15:03:00"), data={
            **shred, "started_at": at(1, "15:00:00"), "ended_at": at(1, "15:03:00"), "duration_s": 180,
            "ended_by": "tap"}),
        ev("shredder-1", 3, "shred.started", at(15, "11:00:00"), data=shred),
        ev("shredder-1", 4, "shred.ended", at(15, "11:02:00"), data={
            **shred, "started_at": at(15, "11:00:00"), "ended_at": at(15, "11:02:00"), "duration_s": 120,
            "ended_by": "tap"}),
        ev("printer-1", 1, "print.released", at(2, "09:30:00"), person="S001", data={
            "user": "S001", "jobs": [{"id": 7, "title": "住民票", "pages": 2}, {"id": 8, "title": "=1+1", "pages": 1}]}),
    )


@pytest.fixture
def stack(tmp_path, store):
    s = Stack(tmp_path, stations=STATIONS)
    s.start_rules()
    yield s
    s.close()


def db_counts(s: Stack) -> dict[str, int]:
    """The month's figures straight from the events table."""
    db = s.engine.connect()
    try:
        def one(sql: str) -> int:
            return db.exec_driver_sql(sql).scalar_one()

        month = "at_utc >= '2025-03-31T15:00' AND at_utc < '2025-04-30T15:00'"
        return {
            "uses": one(f"SELECT count(*) FROM events WHERE kind='key.used' AND {month}"),
            "holder": one(f"SELECT count(*) FROM events WHERE kind='key.used' AND person='S001' AND {month}"),
            "stand_in": one(f"SELECT count(*) FROM events WHERE kind='key.used' AND person='S002' AND {month}"),
            "other": one(f"SELECT count(*) FROM events WHERE kind='key.used' AND person NOT IN ('S001','S002') AND {month}"),
            "sessions": one(f"SELECT count(*) FROM events WHERE kind='shred.started' AND {month}"),
            "held_open": one(f"SELECT count(*) FROM events WHERE kind='door.held_open' AND {month}"),
            "released": sum(len(__import__("json").loads(d)["jobs"]) for (d,) in db.exec_driver_sql(
                f"SELECT data FROM events WHERE kind='print.released' AND {month}")),
        }
    finally:
        db.close()


def pdf_text(body: bytes, tmp_path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(body)
    done = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, timeout=60, check=True)
    return done.stdout.decode()


def figure(text: str, label: str) -> int:
    """The number printed after ``label`` on its line of the PDF."""
    found = re.search(re.escape(label) + r"\s+(\d+)\s*$", text, re.MULTILINE)
    assert found, f"{label!r} not in the PDF text"
    return int(found.group(1))


def test_the_pdf_says_what_the_database_holds(stack, tmp_path):
    a_month_of_work(stack)
    report = monthly.build(stack.engine, stack.cfg, SITE, MONTH)
    counts = db_counts(stack)
    assert counts == {"uses": 5, "holder": 3, "stand_in": 1, "other": 1, "sessions": 2, "released": 2,
                      "held_open": 1}
    text = pdf_text(monthly_render.pdf(report, "ja"), tmp_path)
    assert "自己点検報告" in text and MONTH in text
    assert figure(text, "正の鍵責任者による使用") == counts["holder"]
    assert figure(text, "副（代理）による使用") == counts["stand_in"]
    assert figure(text, "その他の職員による使用") == counts["other"]
    assert figure(text, "使用回数（合計）") == counts["uses"]
    assert figure(text, "時間外の使用") == 1  # 07:10 on a Thursday, before business hours
    assert figure(text, "扉の長時間開放") == counts["held_open"]
    assert figure(text, "扉のこじ開け") == 0
    assert figure(text, "利用回数") == counts["sessions"]
    assert figure(text, "受け取られた印刷ジョブ") == counts["released"]
    assert figure(text, "受け取られた枚数") == 3
    assert "改ざんは検出されませんでした" in text
    # Near-misses are counted now (hub.nearmiss): none were filed in this month.
    assert re.search(r"5\. ヒヤリハット\s+0\s*$", text, re.MULTILINE)
    # The charts' words are text in the PDF, not outlines.
    assert "時間帯別の鍵の使用" in text and "週別のアラート件数" in text
    # Training: two of three people trained; S001 and S002's training expires in May.
    assert figure(text, "受講済み") == 2 and figure(text, "未受講") == 1
    assert "2025-05-10" in text


def test_uses_count_by_the_designations_of_their_time_not_by_todays(stack, tmp_path):
    a_month_of_work(stack)
    zone = ZoneInfo("Asia/Tokyo")
    # On the 5th the stand-in S002 becomes the holder (S001 steps down); in May S003 takes over.
    registry.set_holder(stack.engine, "admin", "cabinet-1", "S002", now=datetime(2025, 4, 5, 12, 0, tzinfo=zone))
    registry.set_holder(stack.engine, "admin", "cabinet-1", "S003", now=datetime(2025, 5, 20, 12, 0, tzinfo=zone))
    keys = monthly.build(stack.engine, stack.cfg, SITE, MONTH).keys
    # S001 on the 1st-3rd: holder then; S002 on the 8th: holder then; S003 on the 9th: flagged, other.
    assert (keys.holder, keys.stand_in, keys.other) == (4, 0, 1)
    assert {(person, role): n for person, _name, role, n in keys.by_person} == {
        ("S001", "holder"): 3, ("S002", "holder"): 1, ("S003", "other"): 1}
    text = pdf_text(monthly_render.pdf(monthly.build(stack.engine, stack.cfg, SITE, MONTH), "ja"), tmp_path)
    assert figure(text, "正の鍵責任者による使用") == 4 and figure(text, "副（代理）による使用") == 0
    # May: S001's use on the 1st came after S001 stepped down (today's holder, S003, came later).
    assert monthly.build(stack.engine, stack.cfg, SITE, "2025-05").keys.holder == 0


def test_the_english_pdf_and_the_workbook_give_the_same_figures(stack, tmp_path):
    a_month_of_work(stack)
    report = monthly.build(stack.engine, stack.cfg, SITE, MONTH)
    text = pdf_text(monthly_render.pdf(report, "en"), tmp_path)
    assert figure(text, "Uses by the designated holder") == 3 and figure(text, "Uses by others") == 1
    assert "No tampering found" in text
    book = load_workbook(io.BytesIO(monthly_render.xlsx(report, "ja")))
    summary = {row[0]: row[1] for row in book["自己点検報告"].iter_rows(min_row=2, values_only=True)}
    counts = db_counts(stack)
    assert summary["正の鍵責任者による使用"] == counts["holder"]
    assert summary["副（代理）による使用"] == counts["stand_in"]
    assert summary["その他の職員による使用"] == counts["other"]
    assert summary["利用回数"] == counts["sessions"]
    assert summary["受け取られた印刷ジョブ"] == counts["released"]
    assert summary["監査記録の検証"] == "改ざんは検出されませんでした"
    people = list(book["職員別の使用回数"].iter_rows(min_row=2, values_only=True))
    assert people[0] == ("S001", "職員 0001", "正", 3)
    hours = {h: c for h, c in book["時間帯別の鍵の使用"].iter_rows(min_row=2, values_only=True)}
    assert hours[7] == 1 and hours[10] == 1 and sum(hours.values()) == counts["uses"]


def test_a_tampered_trail_is_reported(stack, tmp_path):
    a_month_of_work(stack)
    with stack.engine.begin() as db:  # someone with the database's password, behind the hub
        db.exec_driver_sql("UPDATE events SET person='S009' WHERE kind='key.used' AND seq=5")
    report = monthly.build(stack.engine, stack.cfg, SITE, MONTH)
    assert not report.verification.ok
    text = pdf_text(monthly_render.pdf(report, "ja"), tmp_path)
    assert "検証で問題が見つかりました" in text and "TAMPERED" in text


def test_the_report_says_which_rows_it_recomputed(stack, tmp_path):
    """The report recomputes its month's rows and the chain on to the hub's verified mark, not the
    whole store, and says so: the month's first and last row and its count, from the database."""
    from hub.audit import prefix

    a_month_of_work(stack)
    assert prefix.advance(stack.engine).ok  # the hub's job, as it runs every hour
    with stack.engine.connect() as db:
        first, last, count = db.exec_driver_sql(
            "SELECT min(row_no), max(row_no), count(*) FROM events WHERE "
            "at_utc >= '2025-03-31T15:00' AND at_utc < '2025-04-30T15:00'").one()
        head = db.exec_driver_sql("SELECT row_no FROM chain_head").scalar()
    report = monthly.build(stack.engine, stack.cfg, SITE, MONTH)
    assert report.verification.ok, report.verification.lines
    lines = report.verification.lines
    assert lines[0].startswith(f"verified prefix: OK: rows 1-{head} recomputed by the hub")
    assert lines[1].startswith(f"events: OK: rows {first}-{head} recomputed ({count} rows of the month, "
                               f"rows {first}-{last}), chain intact up to the hub's verification of ")
    text = pdf_text(monthly_render.pdf(report, "en"), tmp_path)
    assert f"rows {first}-{head} recomputed ({count} rows of the month" in " ".join(text.split())


def test_a_month_with_nothing_recorded(stack, tmp_path):
    report = monthly.build(stack.engine, stack.cfg, SITE, "2030-02")
    assert report.keys.uses == 0 and report.shredding.sessions == 0 and report.alerts.raised == 0
    assert [d.isoformat() for d, _n in report.alerts.by_week][0] == "2030-01-28"
    text = pdf_text(monthly_render.pdf(report, "ja"), tmp_path)
    assert figure(text, "使用回数（合計）") == 0


def test_the_first_of_the_month_sends_the_report_to_the_supervisors_once(tmp_path):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from hub.alerting.notify import Notifier
    from hub.ledgers.monthly_schedule import MonthlyScheduler
    from tests.support.sinks import HttpSink
    from tests.support.mosquitto import wait_for

    zone = ZoneInfo("Asia/Tokyo")
    sink = HttpSink()
    s = Stack(tmp_path, stations=STATIONS, sites={SITE: {
        "name": "Ward A", "supervisors": [{"url": f"json://127.0.0.1:{sink.port}/hook", "label": "chat"}]}})
    notifier = Notifier(s.engine, s.cfg).start()
    try:
        s.start_rules()
        a_month_of_work(s)
        runs = MonthlyScheduler(s.engine, s.cfg, notifier)
        assert runs.run_due(datetime(2025, 4, 30, 23, 0, tzinfo=zone)) == []
        assert runs.run_due(datetime(2025, 5, 1, 5, 59, tzinfo=zone)) == []
        [made] = runs.run_due(datetime(2025, 5, 1, 6, 0, 30, tzinfo=zone))
        assert made.month == MONTH and made.keys.uses == 5
        # A restart later that day does not send it again.
        assert MonthlyScheduler(s.engine, s.cfg, notifier).run_due(datetime(2025, 5, 1, 9, 0, tzinfo=zone)) == []
        wait_for(lambda: sink.bodies, timeout=15, what="the monthly report delivered")
        [body] = sink.bodies
        assert "自己点検報告" in body["title"] and MONTH in body["title"]
        text = body["message"]
        assert "正の鍵責任者による使用 3" in text and "Uses by the designated holder 3" in text
        assert f"/monthly?site={SITE}&month={MONTH}" in text
        # The report itself comes with it, as PDF in both languages, and says the same figures.
        names = [a["filename"] for a in body["attachments"]]
        assert names == [f"monthly-report_{SITE}_{MONTH}_ja.pdf", f"monthly-report_{SITE}_{MONTH}_en.pdf"]
        assert {a["mimetype"] for a in body["attachments"]} == {"application/pdf"}
        ja = pdf_text(base64.b64decode(body["attachments"][0]["base64"]), tmp_path)
        counts = db_counts(s)
        assert "自己点検報告" in ja and MONTH in ja
        assert figure(ja, "正の鍵責任者による使用") == counts["holder"] == 3
        assert figure(ja, "利用回数") == counts["sessions"] == 2
        en = pdf_text(base64.b64decode(body["attachments"][1]["base64"]), tmp_path)
        assert "Monthly self-inspection report" in en and "Uses by the designated holder" in en
    finally:
        notifier.stop()
        s.close()
        sink.close()


def test_the_report_goes_out_without_its_pdf_when_the_pdf_cannot_be_made(tmp_path, monkeypatch):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from hub.alerting.notify import Notifier
    from hub.alerting.sinks import MemorySink
    from hub.ledgers.monthly_schedule import MonthlyScheduler
    from tests.support.mosquitto import wait_for

    sink = MemorySink()
    s = Stack(tmp_path, stations=STATIONS, sites={SITE: {
        "name": "Ward A", "supervisors": [{"url": "memory://desk", "label": "desk"}]}})
    notifier = Notifier(s.engine, s.cfg, sink_factory=lambda url, timeout_s, what: sink).start()
    try:
        s.start_rules()
        a_month_of_work(s)

        def broken(report, lang="ja"):
            raise OSError("no space left on device")

        monkeypatch.setattr(monthly_render, "pdf", broken)
        [made] = MonthlyScheduler(s.engine, s.cfg, notifier).run_due(
            datetime(2025, 5, 1, 6, 0, 30, tzinfo=ZoneInfo("Asia/Tokyo")))
        assert made.keys.uses == 5
        wait_for(lambda: sink.sent, timeout=15, what="the monthly report delivered")
        [sent] = sink.sent
        assert sent.attachments == ()
        assert "PDFを作成できなかったため添付していません" in sent.body and "The PDF could not be made" in sent.body
        assert "正の鍵責任者による使用 3" in sent.body
    finally:
        notifier.stop()
        s.close()
