"""A ledger's period a page at a time (hub.ledgers.paging): following the next links from the
first page gives every row of the period exactly once, in the ledger's order, for the key
ledger, the shredding ledger and the print release log, and the previous links give the same
pages back; a mark the pages did not write is refused, one naming no row starts at its day."""
from __future__ import annotations

from datetime import date

import pytest

from hub.config import load
from hub.ledgers import keys, paging, printing, shredding
from hub.ledgers.base import Period, month_period
from hub.registry.policy import compile_policies, load_staff, store_policies
from hub.store import migrate
from hub.store.db import make_engine
from tests.hub.helpers import event
from tests.support.key_uses import SITES, at, forced, use
from tests.support.web_app import HOLDER, STANDIN, store, write_config

STATIONS = [
    {"id": "cabinet-1", "site": "ward-a", "kind": "cabinet", "name": "Cabinet 1"},
    {"id": "cabinet-2", "site": "ward-a", "kind": "cabinet", "name": "Cabinet 2"},
    {"id": "cabinet-3", "site": "ward-a", "kind": "cabinet", "name": "Cabinet 3"},  # no use in April
    {"id": "shredder-1", "site": "ward-a", "kind": "shredder", "name": "Shredder 1"},
    {"id": "printer-1", "site": "ward-a", "kind": "printer", "name": "Printer 1"},
]
APRIL = month_period("2025-04")


@pytest.fixture
def cfg(tmp_path, store):
    return load(write_config(tmp_path / "hub", sites=SITES, stations=STATIONS))


@pytest.fixture
def engine(cfg):
    eng = make_engine(cfg.db_url())
    migrate.upgrade(eng)
    store_policies(eng, compile_policies(load_staff(cfg.staff_path()), cfg.known_stations()))
    yield eng
    eng.dispose()


def month_of_events() -> list[tuple[str, dict]]:
    """Uses at two cabinets on five days (three and two a day), a forced door each, a use that
    began before midnight and ended after it; shredding sessions; print releases of two jobs
    and an expired job; one event on 1 May (outside the month)."""
    out: list[tuple[str, dict]] = []
    for cab, per_day in (("cabinet-1", 3), ("cabinet-2", 2)):
        seq = 1
        for day in ("04-01", "04-02", "04-03", "04-07", "04-08"):
            for i in range(per_day):
                hour = f"{9 + i:02d}"
                out += use(cab, seq, HOLDER if i else STANDIN, "S001" if i else "S002", day,
                           f"{hour}:00:00", f"{hour}:00:05", f"{hour}:01:00", 55.0)
                seq += 4
        out += forced(cab, seq, "04-08", "12:00:00", "12:00:30", 30.0)
        seq += 2
    late = use("cabinet-2", seq, HOLDER, "S001", "04-09", "23:59:50", "23:59:55", "23:59:58", 25.0)
    for _, body in late[2:]:  # closed (and the use recorded) after midnight
        body["at"] = at("04-10", "00:00:20")
    late[3][1]["data"]["closed_at"] = at("04-10", "00:00:20")
    out += late
    out += use("cabinet-1", 200, HOLDER, "S001", "05-01", "09:00:00", "09:00:05", "09:01:00", 55.0)
    people = {"people": ["S001", "S002"], "badges": [HOLDER, STANDIN]}
    for n, day in enumerate(("04-01", "04-01", "04-02", "04-09", "04-09", "04-09", "04-14", "04-14", "04-30")):
        start, end = (f"{10 + n:02d}:00:00", f"{10 + n:02d}:02:00")
        out += [("event", event("shredder-1", 2 * n + 1, kind="shred.started", at=at(day, start), badge=STANDIN,
                                person="S002", data=people)),
                ("event", event("shredder-1", 2 * n + 2, kind="shred.ended", at=at(day, end), badge=STANDIN,
                                person="S002", data={**people, "duration_s": 120.0, "ended_by": "tap"}))]
    for n, day in enumerate(("04-01", "04-02", "04-02", "04-03", "04-15")):
        out.append(("event", event("printer-1", n + 1, kind="print.released", at=at(day, f"{11 + n:02d}:00:00"),
                                   badge=HOLDER, person="S001", data={"user": "S001", "jobs": [
                                       {"id": 10 * n + 1, "title": f"文書{n}a.pdf", "pages": 1},
                                       {"id": 10 * n + 2, "title": f"文書{n}b.pdf", "pages": 2}]})))
    out.append(("event", event("printer-1", 9, kind="print.expired", at=at("04-20", "18:00:00"), badge=None,
                               person=None, data={"jobs": [{"id": 99, "title": "忘れ物.pdf", "user": "S001"}]})))
    return out


@pytest.fixture
def stored(engine):
    payloads = month_of_events()
    ingest = store(engine, payloads)
    assert ingest.ingested == len(payloads) and ingest.quarantined == 0
    return payloads


def ident(row) -> tuple:
    return (row.station, row.day, row.event_id, getattr(row, "entry", ""), getattr(row, "job_id", None))


LEDGERS = {
    "keys": (keys.key_ledger, ["cabinet-1", "cabinet-2", "cabinet-3"]),
    "shredding": (shredding.sessions, ["shredder-1"]),
    "printing": (printing.release_log, ["printer-1"]),
}


def every_page(build, engine, cfg, stations, period: Period, size: int) -> list[paging.Page]:
    pages, mark = [], None
    for _ in range(1000):  # bounded: a few pages here
        found = paging.page(build, engine, cfg, stations, period, mark, names={}, size=size)
        pages.append(found)
        if found.next is None:
            return pages
        mark = found.next
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize("ledger", LEDGERS)
@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_the_next_links_give_every_row_once_in_the_ledger_s_order(engine, cfg, stored, ledger, size):
    build, stations = LEDGERS[ledger]
    whole = build(engine, cfg, APRIL.first, APRIL.last, names={})
    assert len(whole) > 7  # several pages of every size
    pages = every_page(build, engine, cfg, stations, APRIL, size)
    assert [ident(r) for p in pages for r in p.rows] == [ident(r) for r in whole]
    assert all(len(p.rows) == size for p in pages[:-1]) and 1 <= len(pages[-1].rows) <= size
    assert not pages[0].has_previous and pages[0].start is None


@pytest.mark.parametrize("ledger", LEDGERS)
def test_the_previous_links_give_the_same_pages_back(engine, cfg, stored, ledger):
    build, stations = LEDGERS[ledger]
    forward = every_page(build, engine, cfg, stations, APRIL, 3)
    back, found = [], forward[-1]
    for _ in range(1000):
        back.append([ident(r) for r in found.rows])
        if not found.has_previous:
            break
        found = paging.page(build, engine, cfg, stations, APRIL, found.previous, names={}, size=3)
    assert back == [[ident(r) for r in p.rows] for p in reversed(forward)]


def test_a_use_across_midnight_is_on_the_day_it_began_in_pages_as_in_the_month(engine, cfg, stored):
    pages = every_page(keys.key_ledger, engine, cfg, ["cabinet-2"], APRIL, 2)
    late = [r for p in pages for r in p.rows if r.unlocked_at and r.unlocked_at.hour == 23]
    assert [(r.day, r.closed_at.isoformat()) for r in late] == [(date(2025, 4, 9), at("04-10", "00:00:20"))]


def test_a_range_and_one_station_page_the_same_way(engine, cfg, stored):
    period = Period("range", date(2025, 4, 2), date(2025, 4, 8))
    whole = keys.key_ledger(engine, cfg, period.first, period.last, station="cabinet-1", names={})
    pages = every_page(keys.key_ledger, engine, cfg, ["cabinet-1"], period, 4)
    assert [ident(r) for p in pages for r in p.rows] == [ident(r) for r in whole]
    assert {r.day for r in whole} == {date(2025, 4, d) for d in (2, 3, 7, 8)}


def test_a_mark_round_trips_and_anything_else_is_refused():
    mark = paging.Mark(date(2025, 4, 2), 12345, 1, "cab:inet/1")
    assert paging.Mark.parse(mark.text()) == mark
    for bad in ("", "2025-04-02", "2025-04-02:12:0:", "2025-13-02:1:0:cabinet-1", "2025-04-02:-1:0:cabinet-1",
                "2025-04-02:1:x:cabinet-1", "2025-04-02:１:0:cabinet-1", "2025-04-02:" + "9" * 30 + ":0:c"):
        with pytest.raises(paging.MarkError):
            paging.Mark.parse(bad)


def test_a_mark_naming_no_row_starts_at_its_day_and_one_elsewhere_at_the_first_page(engine, cfg, stored):
    whole = keys.key_ledger(engine, cfg, APRIL.first, APRIL.last, station="cabinet-1", names={})
    nowhere = paging.Mark(date(2025, 4, 3), 10 ** 9, 0, "cabinet-1")
    found = paging.page(keys.key_ledger, engine, cfg, ["cabinet-1"], APRIL, nowhere, names={}, size=3)
    assert [ident(r) for r in found.rows] == [ident(r) for r in whole if r.day >= date(2025, 4, 3)][:3]
    for elsewhere in (paging.Mark(date(2025, 4, 3), 1, 0, "cabinet-9"), paging.Mark(date(2025, 5, 1), 1, 0, "cabinet-1")):
        first = paging.page(keys.key_ledger, engine, cfg, ["cabinet-1"], APRIL, elsewhere, names={}, size=3)
        assert [ident(r) for r in first.rows] == [ident(r) for r in whole[:3]] and not first.has_previous


def test_the_period_s_event_counts(engine, cfg, stored):
    counts = paging.event_counts(engine, cfg, ["cabinet-1", "cabinet-2", "cabinet-3"],
                                 [k for ks in keys.COUNTED.values() for k in ks], APRIL)
    assert counts == {"key.used": 3 * 5 + 2 * 5 + 1, "unlock.expired": 0, "unlock.ended": 0, "door.forced": 2}
    assert paging.event_counts(engine, cfg, [], ["key.used"], APRIL) == {"key.used": 0}


@pytest.mark.parametrize("month, day", [("0001-01", date(1, 1, 5)), ("9999-12", date(9999, 12, 28))])
def test_the_first_and_last_months_a_date_holds_page_without_overflowing(engine, cfg, stored, month, day):
    period = month_period(month)
    for start in (None, paging.Mark(day, 1, 0, "cabinet-1"), paging.Mark(day, 1, 0, "cabinet-3")):
        found = paging.page(keys.key_ledger, engine, cfg, ["cabinet-1", "cabinet-2", "cabinet-3"], period, start,
                            names={}, size=2)
        assert found.rows == [] and found.next is None
