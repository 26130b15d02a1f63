"""The shredding ledger (シュレッダー管理簿) and its alert, from stored events: real payloads
through a real Ingest into a real SQLite file, the roster from the registry, and the exports
read back as an auditor's spreadsheet would read them."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook

from hub import registry
from hub.ledgers import shredding as shred_ledger
from tests.hub.helpers import SITE
from tests.support.alert_stack import TUESDAY, Stack, ev

SHREDDER = "shredder-1"
A, B, C = "0123456789ABCDEF", "1111222233334444", "5555666677778888"
STATIONS = [
    {"id": SHREDDER, "site": SITE, "kind": "shredder", "name": "Shredder 2F"},
    {"id": "cabinet-1", "site": SITE, "kind": "cabinet", "name": "Key cabinet 1"},
]


@pytest.fixture
def stack(tmp_path, store):
    s = Stack(tmp_path, stations=STATIONS)
    for number, name in (("S001", "Staff 001"), ("S002", "Staff 002"), ("S003", "Staff 003")):
        registry.add_person(s.engine, "admin", number, name)
    s.start_rules()
    yield s
    s.close()


def session(seq: int, start: str, end: str | None, people=("S001", "S002"), badges=(A, B),
            ended_by: str = "tap", duration: float = 120.0):
    """shred.started (and shred.ended) events as a shredder unit sends them."""
    data = {"people": list(people), "badges": list(badges), "max_s": 600}
    out = [ev(SHREDDER, seq, "shred.started", start, badge=badges[1], person=people[1], data=data)]
    if end is not None:
        out.append(ev(SHREDDER, seq + 1, "shred.ended", end, badge=badges[1], person=people[1], data={
            **data, "started_at": start, "ended_at": end, "duration_s": duration, "ended_by": ended_by}))
    return out


def test_a_session_names_both_people_with_times_and_how_it_ended(stack):
    registry.set_roster(stack.engine, "admin", SHREDDER, TUESDAY, ["S001"])
    stack.feed(*session(1, f"{TUESDAY}T10:00:00+09:00", f"{TUESDAY}T10:02:00+09:00"))
    [row] = shred_ledger.sessions(stack.engine, stack.cfg, date(2025, 4, 1))
    assert row.station == SHREDDER and row.station_name == "Shredder 2F"
    assert row.people == ["S001", "S002"] and row.names == ["Staff 001", "Staff 002"]
    assert row.badges == [A, B]
    assert row.started_at.isoformat() == "2025-04-01T10:00:00+09:00"
    assert row.ended_at.isoformat() == "2025-04-01T10:02:00+09:00"
    assert row.duration_s == 120.0 and row.ended_by == "tap"
    # One of the two was on the day's roster, within hours: nothing to check.
    assert row.on_roster == [True, False] and not row.flagged
    assert stack.alerts() == []


def test_neither_on_the_roster_is_flagged_in_the_ledger_and_alerted(stack):
    registry.set_roster(stack.engine, "admin", SHREDDER, TUESDAY, ["S003"])
    stack.feed(*session(1, f"{TUESDAY}T10:00:00+09:00", f"{TUESDAY}T10:02:00+09:00"))
    [row] = shred_ledger.sessions(stack.engine, stack.cfg, date(2025, 4, 1))
    assert row.not_on_roster and not row.after_hours and row.flagged
    [alert] = stack.alerts()
    assert (alert["rule"], alert["severity"], alert["station"]) == ("shred_flagged", "warning", SHREDDER)
    assert alert["params"]["flags"] == ["not_on_roster"] and alert["params"]["people"] == ["S001", "S002"]
    assert "Shredder 2F" in alert["message"] and "S001, S002" in alert["message"]


def test_after_hours_is_flagged_and_alerted_once_not_per_tap(stack):
    registry.set_roster(stack.engine, "admin", SHREDDER, TUESDAY, ["S001", "S002"])
    taps = [ev(SHREDDER, n, "badge.granted", f"{TUESDAY}T19:00:0{n}+09:00", badge=b, person=p,
               data={"flagged": False, "reason": "allowed"}) for n, b, p in ((1, A, "S001"), (2, B, "S002"))]
    stack.feed(*taps, *session(3, f"{TUESDAY}T19:00:03+09:00", f"{TUESDAY}T19:05:00+09:00"))
    [row] = shred_ledger.sessions(stack.engine, stack.cfg, date(2025, 4, 1))
    assert row.after_hours and not row.not_on_roster
    assert stack.rules_of() == ["shred_flagged"]  # no after_hours alert per tap
    assert stack.alerts()[0]["params"]["flags"] == ["after_hours"]


def test_a_month_lists_every_session_and_a_restart_cuts_one_short(stack):
    stack.feed(
        *session(1, "2025-04-01T10:00:00+09:00", "2025-04-01T10:01:00+09:00", ended_by="stop_button"),
        *session(3, "2025-04-15T14:00:00+09:00", None),
        ev(SHREDDER, 4, "station.started", "2025-04-15T14:03:00+09:00"),
        *session(5, "2025-04-30T23:59:00+09:00", "2025-05-01T00:09:00+09:00", ended_by="max_length",
                 duration=600.0),
        *session(7, "2025-05-02T09:00:00+09:00", "2025-05-02T09:01:00+09:00"),
    )
    first, last = shred_ledger.month_days("2025-04")
    rows = shred_ledger.sessions(stack.engine, stack.cfg, first, last, station=SHREDDER)
    assert [(r.day.isoformat(), r.ended_by) for r in rows] == [
        ("2025-04-01", "stop_button"), ("2025-04-15", "station_restarted"), ("2025-04-30", "max_length")]
    assert rows[1].ended_at is None and rows[1].duration_s is None
    # A session across midnight stays on the day it started.
    assert rows[2].ended_at.date() == date(2025, 5, 1)
    assert shred_ledger.sessions(stack.engine, stack.cfg, date(2025, 4, 16)) == []


def test_a_session_still_running_is_listed_without_an_end(stack):
    stack.feed(*session(1, f"{TUESDAY}T10:00:00+09:00", None))
    [row] = shred_ledger.sessions(stack.engine, stack.cfg, date(2025, 4, 1))
    assert row.ended_by == "running" and row.ended_at is None


def test_exports_carry_both_people_flags_and_the_snapshot_link(stack):
    stack.feed(*session(1, f"{TUESDAY}T10:00:00+09:00", f"{TUESDAY}T10:02:00+09:00"))
    rows = shred_ledger.sessions(stack.engine, stack.cfg, date(2025, 4, 1))
    raw = shred_ledger.to_csv(rows)
    assert raw.startswith(b"\xef\xbb\xbf")
    [line] = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert line["Person ID (1)"] == "S001" and line["Name (2)"] == "Staff 002"
    assert line["Started at"] == "2025-04-01 10:00:00" and line["Ended by"] == "Badge tap"
    assert line["Neither on the roster"] == "yes" and line["Event ID"] == rows[0].event_id

    rows[0].has_snapshot = True
    book = load_workbook(io.BytesIO(shred_ledger.to_xlsx(rows, shred_ledger.Export(
        snapshot_url=lambda e: f"https://hub.example/snapshots/{e}.jpg"), title="Shredding 2025-04-01")))
    values = [[c.value for c in r] for r in book.active.iter_rows()]
    header = values[2]
    data = values[3]
    assert data[header.index("Started at")].isoformat() == "2025-04-01T10:00:00"
    assert data[header.index("Snapshot")] == f"https://hub.example/snapshots/{rows[0].event_id}.jpg"
    assert book.active["A4"].font.bold  # flagged sessions stand out
