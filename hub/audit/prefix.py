"""The verified prefix of the events chain: how far the hub has recomputed the chain and found
it intact, remembered in the ``verified`` side log, so that the monthly report recomputes its
month's rows and not ten years of them.

- :func:`advance` (the hub's periodic job, ``audit.verify_interval_s``): recompute the rows after
  the last mark, starting from the mark's hash, up to the chain head (at most ``max_rows`` a
  turn), and append marks ``{"row_no", "hash", "from_row"}`` when they are intact: one every
  MARK_ROWS rows and one at the end. Each turn costs the rows stored since the one before.
- :func:`check_month` (the monthly report): the month's rows are found by their time; every row
  from the month's first to the first mark at or after its last row is recomputed (hash and link,
  from the stored hash of the row before) and must end on the hash that mark recorded; the
  signatures and seqs of the month's rows are checked (hub.audit.signatures); the last mark is
  held against its row. A month rewritten with its chain recomputed up to anywhere before the
  mark leaves a broken link inside the stretch; recomputed past it, the mark's hash no longer
  matches. Rows before the month are vouched for by the marks only: rewriting them is caught by
  the full ``kagiban verify``, which recomputes every row and holds every mark against its row
  (:func:`compare`, its ``verified`` part).

Marks are side-log entries (hash-chained, in the signed checkpoints), not a table an insider
could quietly edit; a mark is only ever appended after the stretch before it was recomputed.
"""
from __future__ import annotations

import logging
from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from hub.audit.signatures import check_signatures
from hub.store.chain import append_side, verify_side, verify_stretch
from hub.store.db import begin_write
from hub.store.schema import GENESIS_HASH, chain_head, events, side_heads
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

PART = "verified"
MAX_ROWS = 2_000_000  # rows one turn of advance() recomputes (~40 CPU s here); the next turn goes on
# A mark at least every this many rows, so that a month's check (which recomputes on to the first
# mark after the month) reads at most this many rows past its month, even over rows the hub
# verified in one long turn (its first over an existing store).
MARK_ROWS = 100_000


@dataclass(frozen=True)
class Mark:
    """Rows 1..row_no were recomputed and found intact at ``at``; row ``row_no`` then had ``hash``."""

    n: int  # the entry's number in the side log
    row_no: int
    hash: str
    at: str


@dataclass(frozen=True)
class Advanced:
    """What one turn of :func:`advance` did."""

    ok: bool
    rows: int  # rows recomputed
    mark: Mark | None  # the last mark appended (None: nothing new, or a problem)
    line: str


@dataclass(frozen=True)
class MonthCheck:
    """What :func:`check_month` verified, one line per part, as the report prints them."""

    ok: bool
    lines: tuple[str, ...]


class MarksUnreadable(Exception):
    """The ``verified`` side log is not intact (its text says where)."""


def read_marks(conn: Connection) -> list[Mark]:
    """Every mark in log order; MarksUnreadable if the log was altered (the head is held too)."""
    if conn.execute(select(side_heads.c.n).where(side_heads.c.part == PART)).first() is None:
        return []  # a store from before the log (migration 0020_pages): nothing remembered
    rep = verify_side(conn, PART)
    if rep.problem is not None:
        raise MarksUnreadable(f"the verified-prefix log is {rep.problem} at entry {rep.n}"
                              + (f": {rep.detail}" if rep.detail else ""))
    marks = []
    for entry in rep.entries:
        body = entry.body()
        marks.append(Mark(entry.n, int(body["row_no"]), str(body["hash"]), entry.at))
    return marks


def _row_hash(conn: Connection, row_no: int) -> str | None:
    if row_no == 0:
        return GENESIS_HASH
    return conn.execute(select(events.c.hash).where(events.c.row_no == row_no)).scalar()


def _mark_problem(conn: Connection, mark: Mark) -> str | None:
    """What is wrong with ``mark`` against the stored chain, or None."""
    stored = _row_hash(conn, mark.row_no)
    if stored is None:
        return f"row {mark.row_no}, verified at {mark.at}, is not stored (removed)"
    if stored != mark.hash:
        return (f"row {mark.row_no} no longer holds the hash verified at {mark.at} "
                f"({mark.hash[:16]}): the chain up to it was rewritten")
    return None


def advance(engine: Engine, *, max_rows: int = MAX_ROWS, now: datetime | None = None) -> Advanced:
    """Recompute the rows after the last mark (at most ``max_rows``) and append a mark if intact."""
    with engine.connect() as conn, conn.begin():  # one snapshot: the head and the rows read
        marks = read_marks(conn)
        last = marks[-1] if marks else None
        if last is not None:
            problem = _mark_problem(conn, last)
            if problem is not None:
                _LOG.error("verified prefix: %s", problem)
                return Advanced(False, 0, None, f"verified prefix: TAMPERED: {problem}")
        start_no, start_hash = (last.row_no, last.hash) if last else (0, GENESIS_HASH)
        head = conn.execute(select(chain_head.c.row_no)).scalar() or 0
        if head <= start_no:
            return Advanced(True, 0, None, f"verified prefix: OK: rows 1-{start_no}, nothing new")
        upto = min(head, start_no + max_rows)
        ends: list[tuple[int, int, str]] = []  # (from row, to row, hash) of each stretch recomputed
        rows, done_no, done_hash = 0, start_no, start_hash
        while done_no < upto:  # bounded: MARK_ROWS more each time round
            end = min(upto, done_no + MARK_ROWS)
            report, end_hash = verify_stretch(conn, done_no, done_hash, end)
            rows += report.rows
            if not report.ok:
                _LOG.error("verified prefix: rows after %d: %s", done_no, report)
                return Advanced(False, rows, None, f"verified prefix: rows after {done_no}: {report}")
            ends.append((done_no + 1, end, end_hash))
            done_no, done_hash = end, end_hash
    at = utc_text(now or now_utc())
    with begin_write(engine) as conn:
        append_side(conn, PART, [(at, {"op": "verified", "from_row": first, "row_no": end, "hash": digest})
                                 for first, end, digest in ends])
        n = conn.execute(select(side_heads.c.n).where(side_heads.c.part == PART)).scalar_one()
    mark = Mark(n, upto, done_hash, at)
    return Advanced(True, rows, mark, f"verified prefix: OK: rows {start_no + 1}-{upto} recomputed, "
                                      f"rows 1-{upto} verified")


def month_rows(conn: Connection, start_utc: str, end_utc: str) -> tuple[int, int, int] | None:
    """(first row_no, last row_no, count) of the events whose time falls in [start, end), any station."""
    first, last, count = conn.execute(
        select(func.min(events.c.row_no), func.max(events.c.row_no), func.count())
        .where(events.c.at_utc >= start_utc, events.c.at_utc < end_utc)).one()
    return None if not count else (int(first), int(last), int(count))


def check_month(engine: Engine, start_utc: str, end_utc: str) -> MonthCheck:
    """The month's rows, the chain through them, and the verified prefix (module docstring)."""
    lines: list[str] = []
    ok = True
    with engine.connect() as conn, conn.begin():
        try:
            marks = read_marks(conn)
        except MarksUnreadable as exc:
            lines.append(f"verified prefix: TAMPERED: {exc}")
            marks, ok = [], False
        last = marks[-1] if marks else None
        if last is not None:
            problem = _mark_problem(conn, last)
            if problem is not None:
                lines.append(f"verified prefix: TAMPERED: {problem}")
                ok = False
            else:
                lines.append(f"verified prefix: OK: rows 1-{last.row_no} recomputed by the hub by {last.at}, "
                             f"that row still holds the hash then (`kagiban verify` recomputes every row)")
        else:
            lines.append("verified prefix: none yet: rows before the month are not checked here "
                         "(`kagiban verify` recomputes every row)")
        found = month_rows(conn, start_utc, end_utc)
        if found is None:
            lines.append("events: no rows in the month")
            return MonthCheck(ok, tuple(lines))
        first, last_row, count = found
        head = conn.execute(select(chain_head.c.row_no, chain_head.c.hash)).first()
        # The first mark at or after the month's last row closes the stretch.
        rows_of = [m.row_no for m in marks]
        at = bisect_left(rows_of, last_row)
        anchor = marks[at] if at < len(marks) else None
        upto = anchor.row_no if anchor is not None else (head.row_no if head is not None else last_row)
        upto = max(upto, last_row)
        before = _row_hash(conn, first - 1)
        if before is None:
            lines.append(f"events: TAMPERED: row {first - 1}, the one before the month's first, is not stored")
            ok = False
            before = GENESIS_HASH
        report, end_hash = verify_stretch(conn, first - 1, before, upto)
        where = f"rows {first}-{upto} recomputed ({count} rows of the month, rows {first}-{last_row})"
        if not report.ok:
            lines.append(f"events: {report} ({where})")
            ok = False
        elif anchor is not None and end_hash != anchor.hash:
            lines.append(f"events: TAMPERED: row {upto} does not hold the hash verified at {anchor.at}: "
                         f"rows {first}-{upto} were rewritten ({where})")
            ok = False
        elif anchor is None and (head is None or head.row_no != upto or head.hash != end_hash):
            lines.append(f"events: TAMPERED: the chain head does not hold the hash of row {upto} ({where})")
            ok = False
        else:
            closed = (f"the hub's verification of {anchor.at}" if anchor is not None else "the chain head")
            lines.append(f"events: OK: {where}, chain intact up to {closed}")
    signatures = check_signatures(engine, rows=(first, last_row))
    lines += [f"signatures: {line}" for line in signatures.lines()]
    return MonthCheck(ok and signatures.ok, tuple(lines))


def compare(conn: Connection, entries: list[dict[str, Any]]) -> tuple[str | None, str]:
    """``kagiban verify``'s check of the marks: each one's row still holds the hash it recorded,
    and each starts where the one before ended (problem or None, counts)."""
    prev = 0
    for e in entries:
        try:
            mark = Mark(e["_n"], int(e["row_no"]), str(e["hash"]), "")
            start = int(e["from_row"])
        except (KeyError, TypeError, ValueError):
            return f"log entry {e.get('_n')} is not a mark", ""
        if start != prev + 1 or mark.row_no < start:
            return f"log entry {mark.n} vouches for rows {start}-{mark.row_no}, after rows 1-{prev}", ""
        stored = _row_hash(conn, mark.row_no)
        if stored is None:
            return f"row {mark.row_no}, verified in log entry {mark.n}, is not stored (removed)", ""
        if stored != mark.hash:
            return (f"row {mark.row_no} no longer holds the hash verified in log entry {mark.n}: "
                    f"the chain up to it was rewritten after it was verified"), ""
        prev = mark.row_no
    return None, f" ({len(entries)} marks, rows 1-{prev} verified)"
