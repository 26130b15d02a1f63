"""The verified prefix (hub.audit.prefix): the hub remembers how far it recomputed the events chain,
the monthly report's check recomputes only its month (and what follows up to the next mark), and
whatever is rewritten later is still named: by the month's check when it touches the month or the
mark, by the full ``kagiban verify`` when it touches only rows before the month. Real SQLite
files, events stored by the real Ingest."""
from __future__ import annotations

import io
import sqlite3
from datetime import datetime

import pytest

from hub.audit import prefix, verify
from hub.ingest.writer import Ingest
from hub.store import migrate
from hub.store.chain import content_of, row_hash
from hub.store.db import make_engine
from tests.hub.helpers import JST, SITE, encode, event

# April 2025 in Tokyo, as the monthly report bounds it (UTC text).
APRIL = ("2025-03-31T15:00:00.000000Z", "2025-04-30T15:00:00.000000Z")
DAYS = {"2025-03": (20, 25, 28), "2025-04": (2, 9, 16, 23), "2025-05": (7, 14)}


class Store:
    """A store with events on the days of DAYS (two per day), stored in time order."""

    def __init__(self, tmp_path):
        self.path = tmp_path / "k.db"
        self.url = f"sqlite:///{self.path}"
        self.engine = make_engine(self.url)
        migrate.upgrade(self.engine)
        self.seq = 0

    def add(self, days: dict[str, tuple[int, ...]]) -> None:
        ingest = Ingest(self.engine, prefix="p")
        for month, numbers in days.items():
            year, mon = map(int, month.split("-"))
            for day in numbers:
                for hour in (9, 15):
                    self.seq += 1
                    at = datetime(year, mon, day, hour, 0, tzinfo=JST).isoformat()
                    ingest.submit(f"p/{SITE}/cabinet-1/event", encode(event("cabinet-1", self.seq, at=at)))
        ingest.start()
        ingest.stop()

    def sql(self, statement: str, *args) -> list[tuple]:
        db = sqlite3.connect(self.path)
        try:
            with db:
                return db.execute(statement, args).fetchall()
        finally:
            db.close()

    def rows_of_april(self) -> tuple[int, int, int]:
        return self.sql("SELECT min(row_no), max(row_no), count(*) FROM events WHERE at_utc >= ? AND at_utc < ?",
                        *APRIL)[0]

    def rechain_from(self, row_no: int, upto: int | None = None) -> None:
        """What an insider with the database does to hide an edit: every hash from ``row_no`` on
        recomputed, and the chain head moved to the new last hash (``upto``: only that far, the
        head left alone)."""
        engine = make_engine(self.url)
        from sqlalchemy import select, update

        from hub.store.schema import chain_head, events
        with engine.begin() as conn:
            prev = conn.execute(select(events.c.hash).where(events.c.row_no == row_no - 1)).scalar()
            rows = select(events).where(events.c.row_no.between(row_no, upto or 1 << 62)).order_by(events.c.row_no)
            for row in conn.execute(rows).all():
                digest = row_hash(prev, content_of(row))
                conn.execute(update(events).where(events.c.row_no == row.row_no).values(prev_hash=prev, hash=digest))
                prev = digest
            if upto is None:
                conn.execute(update(chain_head).values(hash=prev))
        engine.dispose()

    def verify_lines(self) -> tuple[int, list[str]]:
        out = io.StringIO()
        code = verify.run(self.url, out=out)
        return code, out.getvalue().splitlines()


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path)
    s.add(DAYS)
    yield s
    s.engine.dispose()


def test_the_hub_recomputes_only_what_was_stored_since_its_last_mark(store):
    first = prefix.advance(store.engine)
    assert first.ok and first.rows == 18 and first.mark is not None and first.mark.row_no == 18
    assert prefix.advance(store.engine).rows == 0  # nothing new: nothing recomputed, no mark
    store.add({"2025-05": (21,)})
    second = prefix.advance(store.engine)
    assert second.ok and second.rows == 2 and second.mark is not None and second.mark.row_no == 20
    with store.engine.connect() as conn:
        assert [(m.row_no, m.hash) for m in prefix.read_marks(conn)] == [
            (18, store.sql("SELECT hash FROM events WHERE row_no = 18")[0][0]),
            (20, store.sql("SELECT hash FROM events WHERE row_no = 20")[0][0])]
    code, lines = store.verify_lines()
    assert code == 0 and "verified: OK: 2 entries (2 marks, rows 1-20 verified), log intact and matching the store" in lines


def test_a_turn_recomputes_at_most_max_rows_and_the_next_goes_on(store):
    assert prefix.advance(store.engine, max_rows=10).mark.row_no == 10
    assert prefix.advance(store.engine, max_rows=10).mark.row_no == 18
    assert store.verify_lines()[0] == 0


def test_a_long_turn_leaves_a_mark_every_mark_rows_so_a_month_reads_little_past_its_end(store, monkeypatch):
    monkeypatch.setattr(prefix, "MARK_ROWS", 5)
    assert prefix.advance(store.engine).rows == 18
    with store.engine.connect() as conn:
        assert [m.row_no for m in prefix.read_marks(conn)] == [5, 10, 15, 18]
    check = prefix.check_month(store.engine, *APRIL)  # April is rows 7-14: on to the mark at 15
    assert check.ok and check.lines[1].startswith("events: OK: rows 7-15 recomputed (8 rows of the month")
    assert store.verify_lines()[0] == 0


def test_the_month_check_recomputes_the_month_up_to_the_next_mark_and_says_so(store):
    prefix.advance(store.engine)
    first, last, count = store.rows_of_april()
    assert (first, last, count) == (7, 14, 8)
    check = prefix.check_month(store.engine, *APRIL)
    assert check.ok, check.lines
    assert check.lines[0].startswith("verified prefix: OK: rows 1-18 recomputed by the hub by ")
    # The month's 8 rows and the chain on to the hub's mark at row 18; not rows 1-6.
    assert check.lines[1].startswith("events: OK: rows 7-18 recomputed (8 rows of the month, rows 7-14), "
                                     "chain intact up to the hub's verification of ")
    assert check.lines[-1].startswith("signatures: OK: 0 signed rows of rows 7-14 checked")


def test_without_a_mark_the_month_is_checked_up_to_the_chain_head(store):
    check = prefix.check_month(store.engine, *APRIL)
    assert check.ok, check.lines
    assert check.lines[0].startswith("verified prefix: none yet")
    assert check.lines[1].startswith("events: OK: rows 7-18 recomputed (8 rows of the month, rows 7-14), "
                                     "chain intact up to the chain head")


def test_a_month_row_edited_in_place_is_named(store):
    prefix.advance(store.engine)
    store.sql("UPDATE events SET person = 'staff-009' WHERE row_no = 10")
    check = prefix.check_month(store.engine, *APRIL)
    assert not check.ok
    assert check.lines[1].startswith("events: TAMPERED: row 10 (cabinet-1 seq 10) content altered")


def test_a_month_rewritten_with_its_chain_recomputed_is_named_by_the_mark(store):
    prefix.advance(store.engine)
    store.sql("UPDATE events SET person = 'staff-009' WHERE row_no = 10")
    store.rechain_from(10)
    check = prefix.check_month(store.engine, *APRIL)
    assert not check.ok
    assert any("row 18 no longer holds the hash verified at" in line for line in check.lines), check.lines
    assert any(line.startswith("events: TAMPERED: row 18 does not hold the hash verified at") for line in check.lines)
    code, lines = store.verify_lines()
    assert code == 1
    assert [line for line in lines if line.startswith("verified:")][0].startswith(
        "verified: TAMPERED: 1 entries; row 18 no longer holds the hash verified in log entry 1")


def test_a_month_rewritten_up_to_a_row_before_the_mark_breaks_a_link_in_the_stretch(store):
    prefix.advance(store.engine)
    store.sql("UPDATE events SET person = 'staff-009' WHERE row_no = 10")
    store.rechain_from(10, upto=16)  # rows 17 and 18 (the mark's) left as they were
    check = prefix.check_month(store.engine, *APRIL)
    assert not check.ok
    assert check.lines[1].startswith("events: TAMPERED: row 17 (cabinet-1 seq 17) does not follow the row before it")


def test_a_row_before_the_month_is_left_to_the_full_verify(store):
    """The month's check vouches for the rows before the month by the hub's mark; an edit there
    that keeps the chain's hashes is found by `kagiban verify`, which recomputes every row."""
    prefix.advance(store.engine)
    store.sql("UPDATE events SET person = 'staff-009' WHERE row_no = 3")
    assert prefix.check_month(store.engine, *APRIL).ok
    code, lines = store.verify_lines()
    assert code == 1 and lines[0] == "events: TAMPERED: row 3 (cabinet-1 seq 3) content altered"


def test_a_prefix_rewritten_with_its_chain_recomputed_is_named_by_both(store):
    prefix.advance(store.engine)
    store.sql("UPDATE events SET person = 'staff-009' WHERE row_no = 3")
    store.rechain_from(3)
    check = prefix.check_month(store.engine, *APRIL)
    assert not check.ok
    assert check.lines[0].startswith("verified prefix: TAMPERED: row 18 no longer holds the hash verified at ")
    code, lines = store.verify_lines()
    assert code == 1
    assert lines[0] == "events: OK: 18 rows, chain intact"  # consistent, but not what was verified:
    assert any(line.startswith("verified: TAMPERED: 1 entries; row 18 no longer holds") for line in lines)
    assert not prefix.advance(store.engine).ok  # and the hub does not build on it


def test_an_edited_mark_is_named(store):
    prefix.advance(store.engine)
    store.sql("UPDATE side_log SET entry = replace(entry, '\"row_no\":18', '\"row_no\":17') WHERE part = 'verified'")
    check = prefix.check_month(store.engine, *APRIL)
    assert not check.ok and check.lines[0].startswith("verified prefix: TAMPERED: the verified-prefix log is altered")
    code, lines = store.verify_lines()
    assert code == 1 and any(line.startswith("verified: TAMPERED: 0 entries read; log entry 1 content altered")
                             for line in lines)


def test_a_month_with_no_rows(store):
    check = prefix.check_month(store.engine, "2025-01-31T15:00:00.000000Z", "2025-02-28T15:00:00.000000Z")
    assert check.ok and check.lines[-1] == "events: no rows in the month"


def test_the_hub_moves_the_verified_prefix_on_when_it_starts(tmp_path, start_hub, station):
    """The hub's own job (every audit.verify_interval_s, the first time at start): a hub started
    over a store with rows it never verified marks them at once."""
    from tests.support.mosquitto import wait_for

    hub = start_hub(audit={"verify_interval_s": 3600})
    st = station("cabinet-1")
    for seq in (1, 2, 3):
        st.publish("event", encode(event("cabinet-1", seq)))
    wait_for(lambda: st.acked_seqs() == {1, 2, 3}, timeout=10, what="events acked")
    hub.stop()
    again = start_hub(tmp_path / "hub", audit={"verify_interval_s": 3600})

    def marked() -> list[int]:
        with again.engine.connect() as conn:
            return [m.row_no for m in prefix.read_marks(conn)]
    wait_for(lambda: marked() == [3], timeout=20, what="the mark of rows 1-3")
