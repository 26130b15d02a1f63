"""The key ledger (鍵の使用簿) an auditor checks: per cabinet and day, who unlocked, opened and
closed, for how long, who was flagged, who held the keys last, forced openings and taps that
did not open; exported as CSV (UTF-8 with BOM) and Excel with real date-times."""
from __future__ import annotations

import csv
import io
import random
import re
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook

from hub.ledgers.keys import key_ledger
from tests.hub.helpers import JST, event
from tests.support.key_uses import at, use
from tests.support.web_app import HOLDER, STANDIN, csrf_from, store

DAY = date(2025, 4, 1)


@pytest.fixture
def day_of_uses(engine):
    """One day at cabinet-1 (and a little at cabinet-2), stored through a real Ingest."""
    payloads = [
        *use("cabinet-1", 1, HOLDER, "S001", "04-01", "08:45:00", "08:45:02", "08:46:10", 68.0),
        *use("cabinet-1", 5, STANDIN, "S002", "04-01", "13:00:00", "13:00:03", "13:05:03", 300.0, flagged=True),
        # A tap that never opened the door.
        ("event", event("cabinet-1", 9, kind="badge.granted", at=at("04-01", "15:00:00"), badge=HOLDER,
                        person="S001", data={"flagged": False, "reason": "", "unlock_s": 5})),
        ("event", event("cabinet-1", 10, kind="unlock.expired", at=at("04-01", "15:00:05"), badge=HOLDER,
                        person="S001", data={"unlock_s": 5})),
        # Forced open at 18:00, closed 20 s later.
        ("event", event("cabinet-1", 11, kind="door.forced", at=at("04-01", "18:00:00"), badge=None, person=None,
                        data={})),
        ("event", event("cabinet-1", 12, kind="door.closed", at=at("04-01", "18:00:20"), badge=None, person=None,
                        data={"authorised": False, "open_s": 20.0})),
        # Taken before midnight, back after: the 1st's last use.
        *use("cabinet-1", 13, HOLDER, "S001", "04-01", "23:59:40", "23:59:45", "23:59:59", 14.0),
        # The next day: not in the 1st's ledger.
        *use("cabinet-1", 17, STANDIN, "S002", "04-02", "09:00:00", "09:00:02", "09:00:30", 28.0, flagged=True),
        *use("cabinet-2", 1, STANDIN, "S002", "04-01", "10:00:00", "10:00:01", "10:00:11", 10.0),
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
    last_row = page.split('class="entry-use last')[1].split("</tr>")[0]
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


# --- a use open across midnight, the page in both languages, and every reading the same ---

def cells_of(page: str) -> list[list[str]]:
    """The ledger page's body rows as the reader sees them: each cell's text, tags dropped."""
    body = "".join(part.split("</tbody>")[0] for part in page.split("<tbody>")[1:])
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.DOTALL):
        # Markup's own white space only: the narrow no-break space before AM/PM is the page's.
        rows.append([re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", td)).strip()
                     for td in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.DOTALL)])
    return rows


@pytest.fixture
def across_midnight(engine):
    """Cabinet 1: a key taken at 23:59:40 on the 1st and back at 00:02:10 on the 2nd (held open
    past its limit after midnight), a use on the 2nd, and forced open at 23:59:00 on the 2nd,
    closed on the 3rd. Cabinet 2: a use on the 1st, then a tap by the same badge at 23:59:58
    whose unlock expired after midnight."""
    common1 = {"badge": HOLDER, "person": "S001"}
    common2 = {"badge": STANDIN, "person": "S002"}
    payloads = [
        ("event", event("cabinet-1", 1, kind="badge.granted", at=at("04-01", "23:59:40"), **common1,
                        data={"flagged": False, "reason": "", "unlock_s": 5})),
        ("event", event("cabinet-1", 2, kind="door.opened", at=at("04-01", "23:59:45"), **common1,
                        data={"authorised": True, "flagged": False})),
        ("event", event("cabinet-1", 3, kind="door.held_open", at=at("04-02", "00:01:45"), **common1,
                        data={"open_s": 120.0, "limit_s": 120.0, "authorised": True})),
        ("event", event("cabinet-1", 4, kind="door.closed", at=at("04-02", "00:02:10"), **common1,
                        data={"authorised": True, "open_s": 145.0})),
        ("event", event("cabinet-1", 5, kind="key.used", at=at("04-02", "00:02:10"), **common1, data={
            "unlocked_at": at("04-01", "23:59:40"), "opened_at": at("04-01", "23:59:45"), "closed_at": at("04-02", "00:02:10"),
            "duration_s": 145.0, "flagged": False, "reason": ""})),
        *use("cabinet-1", 6, HOLDER, "S001", "04-02", "09:00:00", "09:00:02", "09:00:30", 28.0),
        *use("cabinet-2", 1, STANDIN, "S002", "04-01", "10:00:00", "10:00:01", "10:00:11", 10.0, flagged=True),
        ("event", event("cabinet-2", 5, kind="badge.granted", at=at("04-01", "23:59:58"), **common2,
                        data={"flagged": True, "reason": "", "unlock_s": 5})),
        ("event", event("cabinet-2", 6, kind="unlock.expired", at=at("04-02", "00:00:03"), **common2,
                        data={"unlock_s": 5})),
        ("event", event("cabinet-1", 10, kind="door.forced", at=at("04-02", "23:59:00"), badge=None, person=None,
                        data={})),
        ("event", event("cabinet-1", 11, kind="door.closed", at=at("04-03", "00:00:40"), badge=None, person=None,
                        data={"authorised": False, "open_s": 100.0})),
    ]
    ingest = store(engine, payloads)
    assert ingest.ingested == len(payloads) and ingest.quarantined == 0


def test_a_use_open_at_midnight_stays_on_the_day_the_key_was_taken(engine, cfg, across_midnight):
    first = key_ledger(engine, cfg, date(2025, 4, 1))
    assert [(r.station, r.entry, r.person, r.unlocked_at.isoformat(), r.closed_at and r.closed_at.isoformat(),
             r.duration_s, r.held_open, r.flagged, r.last) for r in first] == [
        ("cabinet-1", "use", "S001", "2025-04-01T23:59:40+09:00", "2025-04-02T00:02:10+09:00", 145.0, True, False,
         True),
        ("cabinet-2", "use", "S002", "2025-04-01T10:00:00+09:00", "2025-04-01T10:00:11+09:00", 10.0, False, True,
         True),
        # The tap behind the expired unlock is the one just before midnight, not the morning's.
        ("cabinet-2", "not_opened", "S002", "2025-04-01T23:59:58+09:00", None, None, False, True, False),
    ]
    second = key_ledger(engine, cfg, date(2025, 4, 2))
    assert [(r.station, r.entry, (r.unlocked_at or r.opened_at).isoformat(), r.closed_at.isoformat(), r.duration_s)
            for r in second] == [
        ("cabinet-1", "use", "2025-04-02T09:00:00+09:00", "2025-04-02T09:00:30+09:00", 28.0),
        ("cabinet-1", "forced", "2025-04-02T23:59:00+09:00", "2025-04-03T00:00:40+09:00", 100.0),
    ]
    # One cabinet asked for: the same rows as in the all-cabinet ledger.
    assert key_ledger(engine, cfg, date(2025, 4, 1), station="cabinet-2") == first[1:]


def test_the_page_across_midnight_in_japanese_and_english(as_supervisor, across_midnight):
    page = as_supervisor.get("/ledger/keys?day=2025-04-01").get_data(as_text=True)
    assert cells_of(page) == [
        ["鍵の使用", "Staff 001 S001", "2025-04-01 23:59:40", "2025-04-01 23:59:45", "2025-04-02 00:02:10", "145 秒",
         "", "本日最後の使用者 時間外 開けっ放し", ""],
        ["鍵の使用", "Staff 002 S002", "2025-04-01 10:00:00", "2025-04-01 10:00:01", "2025-04-01 10:00:11", "10 秒",
         "", "本日最後の使用者 指定外の使用者", ""],
        ["解錠のみ（扉は開けず）", "Staff 002 S002", "2025-04-01 23:59:58", "", "", "", "", "指定外の使用者 時間外", ""],
    ]
    assert cells_of(as_supervisor.get("/ledger/keys?day=2025-04-02").get_data(as_text=True)) == [
        ["鍵の使用", "Staff 001 S001", "2025-04-02 09:00:00", "2025-04-02 09:00:02", "2025-04-02 09:00:30", "28 秒",
         "", "本日最後の使用者", ""],
        ["こじ開け", "特定できず", "", "2025-04-02 23:59:00", "2025-04-03 00:00:40", "100 秒", "", "時間外 バッジなし", ""],
    ]
    as_supervisor.post("/language", data={"lang": "en", "csrf_token": csrf_from(page)})
    page = as_supervisor.get("/ledger/keys?day=2025-04-01").get_data(as_text=True)
    assert cells_of(page) == [
        ["Key use", "Staff 001 S001", "2025-04-01 23:59:40", "2025-04-01 23:59:45",
         "2025-04-02 00:02:10", "145 s", "", "Last user of the day After hours Held open", ""],
        ["Key use", "Staff 002 S002", "2025-04-01 10:00:00", "2025-04-01 10:00:01",
         "2025-04-01 10:00:11", "10 s", "", "Last user of the day Not the designated holder", ""],
        ["Unlocked, not opened", "Staff 002 S002", "2025-04-01 23:59:58", "", "", "", "",
         "Not the designated holder After hours", ""],
    ]
    assert cells_of(as_supervisor.get("/ledger/keys?day=2025-04-02&station=cabinet-1").get_data(as_text=True))[1:] == [
        ["Forced open", "nobody identified", "", "2025-04-02 23:59:00", "2025-04-03 00:00:40",
         "100 s", "", "After hours No badge", ""],
    ]


def test_the_csv_across_midnight_in_japanese_and_english(as_supervisor, across_midnight):
    def csv_rows() -> list[dict[str, str]]:
        body = as_supervisor.get("/ledger/keys.csv?day=2025-04-01").data
        return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))

    rows = csv_rows()
    assert [{k: v for k, v in row.items() if k != "イベントID"} for row in rows] == [
        {"鍵保管庫": "Cabinet 1 (cabinet-1)", "日付": "2025-04-01", "区分": "鍵の使用", "職員番号": "S001",
         "氏名": "Staff 001", "解錠時刻": "2025-04-01 23:59:40", "扉を開けた時刻": "2025-04-01 23:59:45",
         "扉を閉めた時刻": "2025-04-02 00:02:10", "開いていた時間（秒）": "145.0", "作業内容": "", "要確認": "", "時間外": "○",
         "開けっ放し": "○", "本日最後の使用者": "○", "写真": ""},
        {"鍵保管庫": "cabinet-2", "日付": "2025-04-01", "区分": "鍵の使用", "職員番号": "S002", "氏名": "Staff 002",
         "解錠時刻": "2025-04-01 10:00:00", "扉を開けた時刻": "2025-04-01 10:00:01",
         "扉を閉めた時刻": "2025-04-01 10:00:11", "開いていた時間（秒）": "10.0", "作業内容": "", "要確認": "○", "時間外": "",
         "開けっ放し": "", "本日最後の使用者": "○", "写真": ""},
        {"鍵保管庫": "cabinet-2", "日付": "2025-04-01", "区分": "解錠のみ（扉は開けず）", "職員番号": "S002",
         "氏名": "Staff 002", "解錠時刻": "2025-04-01 23:59:58", "扉を開けた時刻": "", "扉を閉めた時刻": "",
         "開いていた時間（秒）": "", "作業内容": "", "要確認": "○", "時間外": "○", "開けっ放し": "",
         "本日最後の使用者": "", "写真": ""},
    ]
    assert all(len(row["イベントID"]) == 36 for row in rows)
    page = as_supervisor.get("/").get_data(as_text=True)
    as_supervisor.post("/language", data={"lang": "en", "csrf_token": csrf_from(page)})
    english = csv_rows()
    assert list(english[0]) == ["Cabinet", "Day", "Entry", "Person ID", "Name", "Unlocked at", "Opened at",
                                "Closed at", "Open for (s)", "Work done", "Flagged", "After hours", "Held open",
                                "Last user of the day", "Photo", "Event ID"]
    assert [(r["Entry"], r["Closed at"], r["Held open"], r["Last user of the day"]) for r in english] == [
        ("Key use", "2025-04-02 00:02:10", "yes", "yes"), ("Key use", "2025-04-01 10:00:11", "", "yes"),
        ("Unlocked, not opened", "", "", ""),
    ]


def _reference_ledger(engine, cfg, day: date) -> list:
    """The ledger rules read the plain way: every event of the ledger's kinds in the span,
    each parsed. key_ledger reads less (and later); it must find the same rows."""
    from hub.ledgers import base
    from hub.ledgers import keys as ledger
    from hub.stations.directory import stations_of_kind

    out = []
    for st in base.station_events(engine, cfg, stations_of_kind(engine, cfg, "cabinet"), ledger._KINDS, day,
                                    before=ledger.SPAN_BEFORE, after=ledger.SPAN_AFTER):
        zone, rows, found = st.zone, st.events, []

        def t(value, zone=zone):
            return base.local_time(value, zone)

        closes = [r for r in rows if r["kind"] == "door.closed"]
        grants = [r for r in rows if r["kind"] == "badge.granted"]
        helds = [t(r["at"]) for r in rows if r["kind"] == "door.held_open"]
        for ev in rows:
            d, entry = ev["data"], None
            if ev["kind"] == "key.used":
                entry = ("use", t(d.get("unlocked_at")), t(d.get("opened_at")), t(d.get("closed_at")) or t(ev["at"]),
                         d.get("duration_s"), d.get("flagged"))
            elif ev["kind"] == "unlock.expired":
                tap = next((g for g in reversed(grants) if g["seq"] < ev["seq"] and g["badge"] == ev["badge"]), None)
                expired, unlock_s = t(ev["at"]), d.get("unlock_s")
                unlocked = t(tap["at"]) if tap else (expired - timedelta(seconds=unlock_s) if expired and isinstance(
                    unlock_s, (int, float)) else expired)
                entry = ("not_opened", unlocked, None, None, None, tap["data"].get("flagged") if tap else False)
            elif ev["kind"] == "door.forced":
                close = next((c for c in closes if c["seq"] > ev["seq"]), None)
                entry = ("forced", None, t(ev["at"]), t(close["at"]) if close else None,
                         close["data"].get("open_s") if close else None, False)
            if entry is None or (entry[1] or entry[2]) is None or (entry[1] or entry[2]).date() != day:
                continue
            kind, unlocked, opened, closed, duration, flagged = entry
            held = any(h is not None and opened is not None and opened <= h and (closed is None or h <= closed)
                       for h in helds)
            found.append((unlocked or opened, ev["row_no"], st.station, kind, ev["person"], unlocked, opened, closed,
                          float(duration) if isinstance(duration, (int, float)) else None, bool(flagged), held))
        found.sort(key=lambda r: (r[0], r[1]))
        out.extend(found)
    return [r[1:] for r in out]


def test_any_day_reads_as_the_plain_reading_of_every_event(engine, cfg):
    """Random streams around two midnights (taps, uses, expiries, forced doors, held doors,
    closings, in any order and with odd data): key_ledger finds what reading everything finds."""
    rnd = random.Random(22)
    payloads, seqs = [], {"cabinet-1": 0, "cabinet-2": 0}
    kinds = ["key.used", "key.used", "unlock.expired", "badge.granted", "badge.granted", "door.forced",
             "door.closed", "door.closed", "door.held_open", "door.opened"]
    base = datetime(2025, 4, 1, 21, 0, tzinfo=JST)
    for _ in range(400):
        station = rnd.choice(list(seqs))
        seqs[station] += 1
        when = base + timedelta(minutes=rnd.randrange(0, 30 * 60))
        # Cabinet 2 never has an expired unlock: its closings are read for its forced doors alone.
        kind = rnd.choice(kinds if station == "cabinet-1" else [k for k in kinds if k != "unlock.expired"])
        badge = rnd.choice([HOLDER, STANDIN, None])
        data: dict = {"flagged": rnd.random() < 0.3, "unlock_s": rnd.choice([5, 5.5, "5", None])}
        if kind == "key.used":
            start = when - timedelta(minutes=rnd.randrange(0, 180))
            data.update(unlocked_at=rnd.choice([start.isoformat(), None, "not a time"]),
                        opened_at=(start + timedelta(seconds=3)).isoformat(), closed_at=rnd.choice([when.isoformat(), None]),
                        duration_s=rnd.choice([12.5, 300, None, "long"]))
        elif kind == "door.closed":
            data.update(open_s=rnd.choice([20.0, 7, None]))
        payloads.append(("event", event(station, seqs[station], kind=kind, at=when.isoformat(), badge=badge,
                                        person={HOLDER: "S001", STANDIN: "S002"}.get(badge), data=data)))
    assert store(engine, payloads).quarantined == 0
    for day in (date(2025, 4, 1), date(2025, 4, 2), date(2025, 4, 3)):
        rows = key_ledger(engine, cfg, day)
        assert len(rows) > 10 or day == date(2025, 4, 3)
        assert [(r.row_no, r.station, r.entry, r.person, r.unlocked_at, r.opened_at, r.closed_at, r.duration_s,
                 r.flagged, r.held_open) for r in rows] == _reference_ledger(engine, cfg, day)


def test_a_grant_taken_over_by_another_tap_is_not_the_first_persons_use(engine, cfg, as_supervisor):
    """S001 taps, S002 taps before the door opens (the cabinet ends S001's grant: superseded),
    then the door opens and closes: the use is S002's; S001 only unlocked."""
    common1 = {"badge": HOLDER, "person": "S001"}
    common2 = {"badge": STANDIN, "person": "S002"}
    payloads = [
        ("event", event("cabinet-1", 1, kind="badge.granted", at=at("04-01", "10:00:00"), **common1,
                        data={"flagged": False, "reason": "", "unlock_s": 5})),
        ("event", event("cabinet-1", 2, kind="unlock.ended", at=at("04-01", "10:00:02"), **common1, data={
            "reason": "superseded", "unlocked_at": at("04-01", "10:00:00"), "unlock_s": 5, "flagged": False,
            "by_badge": STANDIN, "by_person": "S002"})),
        *use("cabinet-1", 3, STANDIN, "S002", "04-01", "10:00:02", "10:00:04", "10:01:04", 60.0, flagged=True),
        # Later S002 taps and S001 takes over; nobody opens; S001's window expires.
        ("event", event("cabinet-1", 7, kind="badge.granted", at=at("04-01", "11:00:00"), **common2,
                        data={"flagged": True, "reason": "", "unlock_s": 5})),
        ("event", event("cabinet-1", 8, kind="badge.granted", at=at("04-01", "11:00:01"), **common1,
                        data={"flagged": False, "reason": "", "unlock_s": 5})),
        ("event", event("cabinet-1", 9, kind="unlock.ended", at=at("04-01", "11:00:01"), **common2, data={
            "reason": "superseded", "unlocked_at": at("04-01", "11:00:00"), "unlock_s": 5, "flagged": True,
            "by_badge": HOLDER, "by_person": "S001"})),
        ("event", event("cabinet-1", 10, kind="unlock.expired", at=at("04-01", "11:00:06"), **common1,
                        data={"unlock_s": 5, "unlocked_at": at("04-01", "11:00:01"), "flagged": False})),
    ]
    store(engine, payloads)
    rows = key_ledger(engine, cfg, DAY, station="cabinet-1")
    assert [(r.entry, r.person, r.unlocked_at.strftime("%H:%M:%S"), r.flagged, r.last) for r in rows] == [
        ("not_opened", "S001", "10:00:00", False, False),
        ("use", "S002", "10:00:02", True, True),
        ("not_opened", "S002", "11:00:00", True, False),
        ("not_opened", "S001", "11:00:01", False, False),
    ]
    assert rows[1].opened_at.strftime("%H:%M:%S") == "10:00:04" and rows[1].duration_s == 60.0
    assert rows[0].opened_at is None and rows[0].duration_s is None
    # The events page names the handover in the reader's language.
    page = as_supervisor.get("/events?station=cabinet-1").get_data(as_text=True)
    assert "別のバッジのタップで解錠を引き継ぎ" in page
