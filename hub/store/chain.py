"""The hash chain over stored events, and its verification.

Each row's ``hash`` is sha256(previous row's hash + canonical JSON of the row's content);
the first row follows the genesis hash (64 zeros). ``chain_head`` records the last row and
its hash in the same transaction, so removing rows from the end shows too. Someone who can
rewrite every later row and the head can still rebuild a consistent chain: anchoring the
head outside the database is what closes that, later.

A row's ``incarnation`` (the station outbox it came from) is part of its content only when it
has one: rows stored before incarnations existed hash exactly as they always did.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from hub.store.db import read_snapshot
from hub.store.schema import GENESIS_HASH, chain_head, events, side_heads, side_log

# The columns a row's hash covers, in the order verify() reads them.
CONTENT_COLUMNS = (
    "site", "station", "seq", "event_id", "kind", "at", "badge", "person", "data", "received_at",
)
# Hashed too when not "" (rows that carry an incarnation).
OPTIONAL_COLUMNS = ("incarnation",)
_STREAM_ROWS = 2000


# What json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) builds on
# every call, made once (it keeps no state between calls): ingest hashes every event with it.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """One JSON text per value: sorted keys, no spaces, UTF-8 characters kept."""
    return _CANONICAL.encode(value)


def row_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """The hash of a row whose content (CONTENT_COLUMNS, ``data`` parsed) is ``content``."""
    return row_hash_text(prev_hash, canonical_json(content))


# content_json()'s pieces: the content's keys in sorted order, each as its JSON key text;
# one set for rows without an incarnation, one for rows with.
_SORTED_COLUMNS = tuple(sorted(CONTENT_COLUMNS))
_KEY_TEXTS = tuple(encode_basestring(name) + ":" for name in _SORTED_COLUMNS)
_SORTED_WITH = tuple(sorted(CONTENT_COLUMNS + OPTIONAL_COLUMNS))
_KEY_TEXTS_WITH = tuple(encode_basestring(name) + ":" for name in _SORTED_WITH)


def _value_json(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is str:
        return encode_basestring(value)
    if type(value) is int:
        return int.__repr__(value)
    return _CANONICAL.encode(value)


def content_json(row: Mapping[str, Any], data_text: str) -> str:
    """canonical_json of a row's content, given its ``data`` as canonical JSON text already:
    the same text as ``canonical_json({**content, "data": json.loads(data_text)})``, which is
    what verify() hashes, built without parsing ``data`` back or a JSON encoder per call
    (ingest does this for every event)."""
    columns, keys = (_SORTED_WITH, _KEY_TEXTS_WITH) if row.get("incarnation") else (_SORTED_COLUMNS, _KEY_TEXTS)
    return "{" + ",".join(
        key + (data_text if name == "data" else _value_json(row[name]))
        for name, key in zip(columns, keys)
    ) + "}"


def row_hash_text(prev_hash: str, content_text: str) -> str:
    """row_hash() for content already in its canonical JSON text (content_json())."""
    return hashlib.sha256((prev_hash + content_text).encode("utf-8")).hexdigest()


def content_of(row: Any) -> dict[str, Any]:
    """The hashed content of a stored row; ValueError if its ``data`` is not JSON."""
    content = {name: getattr(row, name) for name in CONTENT_COLUMNS}
    for name in OPTIONAL_COLUMNS:
        if getattr(row, name, None):
            content[name] = getattr(row, name)
    content["data"] = json.loads(row.data)
    return content


@dataclass(frozen=True)
class VerifyReport:
    """What verify() found: ``problem`` is None for an intact chain, else the first problem."""

    rows: int
    problem: str | None = None  # altered | relinked | removed | truncated | appended | no_head
    row_no: int | None = None
    station: str | None = None
    seq: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when the chain is intact."""
        return self.problem is None

    def __str__(self) -> str:
        if self.ok:
            return f"OK: {self.rows} rows, chain intact"
        where = f"row {self.row_no} ({self.station} seq {self.seq})"
        text = {
            "altered": f"{where} content altered",
            "relinked": f"{where} does not follow the row before it "
            "(that row was altered and its hash rewritten, or a row was removed)",
            "removed": f"rows removed before {where}",
            "truncated": "rows removed at the end",
            "appended": "rows added after the chain head",
            "no_head": "the chain head is missing",
        }[self.problem or ""]
        return f"TAMPERED: {text}" + (f": {self.detail}" if self.detail else "")


def verify(engine: Engine) -> VerifyReport:
    """Recompute the whole chain in row order, streaming, and report the first problem."""
    cols = [events.c.row_no, events.c.prev_hash, events.c.hash] + [
        events.c[name] for name in CONTENT_COLUMNS + OPTIONAL_COLUMNS
    ]
    with read_snapshot(engine) as conn:
        # The head and the rows are read in one transaction: one consistent snapshot.
        head = conn.execute(select(chain_head.c.row_no, chain_head.c.hash)).first()
        result = conn.execution_options(yield_per=_STREAM_ROWS).execute(
            select(*cols).order_by(events.c.row_no)
        )
        prev_no, prev_hash, rows, last = 0, GENESIS_HASH, 0, None
        for row in result:
            found = _check_row(row, prev_no, prev_hash)
            if found is not None:
                result.close()
                return VerifyReport(rows=rows, **found)
            prev_no, prev_hash, rows, last = row.row_no, row.hash, rows + 1, row
    if head is None:
        return VerifyReport(rows=rows, problem="no_head")
    if head.row_no > prev_no:
        return VerifyReport(
            rows=rows,
            problem="truncated",
            detail=f"the chain head names row {head.row_no}, the last row is {prev_no}",
        )
    if head.row_no < prev_no:
        return VerifyReport(
            rows=rows,
            problem="appended",
            detail=f"the chain head names row {head.row_no}, the last row is {prev_no}",
        )
    if head.hash != prev_hash:
        # Same length, different hash: the last row was rewritten together with its hash.
        return VerifyReport(
            rows=rows, problem="altered", row_no=prev_no,
            station=last.station, seq=last.seq,  # type: ignore[union-attr]
            detail="its hash was rewritten; the chain head still holds the old one",
        )
    return VerifyReport(rows=rows)


def verify_stretch(conn: Connection, after_no: int, after_hash: str, upto: int) -> tuple[VerifyReport, str]:
    """Recompute rows ``after_no + 1`` .. ``upto`` in row order, the first of them following
    ``after_hash`` (row ``after_no``'s hash, or GENESIS_HASH for 0): the first problem, and the
    hash of the last row read. Rows missing at the end of the stretch are ``truncated``."""
    cols = [events.c.row_no, events.c.prev_hash, events.c.hash] + [
        events.c[name] for name in CONTENT_COLUMNS + OPTIONAL_COLUMNS
    ]
    result = conn.execution_options(yield_per=_STREAM_ROWS).execute(
        select(*cols).where(events.c.row_no > after_no, events.c.row_no <= upto).order_by(events.c.row_no))
    prev_no, prev_hash, rows = after_no, after_hash, 0
    for row in result:
        found = _check_row(row, prev_no, prev_hash)
        if found is not None:
            result.close()
            return VerifyReport(rows=rows, **found), prev_hash
        prev_no, prev_hash, rows = row.row_no, row.hash, rows + 1
    if prev_no < upto:
        return VerifyReport(rows=rows, problem="truncated",
                            detail=f"rows {prev_no + 1}-{upto} are not stored"), prev_hash
    return VerifyReport(rows=rows), prev_hash


def _check_row(row: Any, prev_no: int, prev_hash: str) -> dict[str, Any] | None:
    """The problem with one row given the row before it, or None."""
    named = {"row_no": row.row_no, "station": row.station, "seq": row.seq}
    if row.row_no != prev_no + 1:
        return {"problem": "removed", **named}
    if row.prev_hash != prev_hash:
        return {"problem": "relinked", **named}
    try:
        expected = row_hash(prev_hash, content_of(row))
    except ValueError:  # data no longer parses: it was edited
        return {"problem": "altered", **named, "detail": "data is not JSON"}
    if row.hash != expected:
        return {"problem": "altered", **named}
    return None


# --- Side logs: one hash chain per part (hub.store.schema.SIDE_PARTS), appended in the writer's own
# transaction so an entry exists exactly when the change it records was committed.


@dataclass(frozen=True)
class SideEntry:
    """One side-log entry as stored: its number in its part, time, canonical JSON and hash."""

    n: int
    at: str
    entry: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The entry's JSON object."""
        return json.loads(self.entry)


def append_side(conn: Connection, part: str, entries: list[tuple[str, dict[str, Any]]]) -> None:
    """Append ``(at, entry)`` pairs to ``part``'s chain and move its head, in ``conn``'s
    transaction. The head row is read FOR UPDATE: on PostgreSQL two writers queue on it (on
    SQLite the write transaction is exclusive already)."""
    if not entries:
        return
    head = conn.execute(_SIDE_HEAD, {"b_part": part}).one()
    n, prev = head.n, head.hash
    rows = []
    for at, entry in entries:
        text = canonical_json(entry)
        digest = row_hash_text(prev, text)
        n += 1
        rows.append({"part": part, "n": n, "at": at, "entry": text, "prev_hash": prev, "hash": digest})
        prev = digest
    conn.execute(_SIDE_INSERT, rows)
    conn.execute(_SIDE_HEAD_MOVE, {"b_part": part, "b_n": n, "b_hash": prev})


# append_side's statements, built once: executed with parameters, their compiled form is reused
# (an alert's entry is appended on the ingest writer's path for an urgent event).
_SIDE_HEAD = select(side_heads.c.n, side_heads.c.hash).where(side_heads.c.part == bindparam("b_part")).with_for_update()
_SIDE_INSERT = insert(side_log)
_SIDE_HEAD_MOVE = (update(side_heads).where(side_heads.c.part == bindparam("b_part"))
                   .values(n=bindparam("b_n"), hash=bindparam("b_hash")))


@dataclass(frozen=True)
class SideReport:
    """What verify_side() found in one part's chain; ``problem`` None when intact."""

    part: str
    entries: list[SideEntry]
    problem: str | None = None  # altered | relinked | removed | truncated | appended
    n: int | None = None
    detail: str = ""


def verify_side(conn: Connection, part: str) -> SideReport:
    """Recompute ``part``'s chain against its head; the entries read (up to the first problem)."""
    head = conn.execute(select(side_heads.c.n, side_heads.c.hash).where(side_heads.c.part == part)).first()
    rows = conn.execute(
        select(side_log.c.n, side_log.c.at, side_log.c.entry, side_log.c.prev_hash, side_log.c.hash)
        .where(side_log.c.part == part).order_by(side_log.c.n))
    read: list[SideEntry] = []
    prev_n, prev = 0, GENESIS_HASH
    for row in rows:
        problem = None
        if row.n != prev_n + 1:
            problem = "removed"
        elif row.prev_hash != prev:
            problem = "relinked"
        elif row.hash != row_hash_text(prev, row.entry):
            problem = "altered"
        else:
            try:
                json.loads(row.entry)
            except ValueError:
                problem = "altered"
        if problem is not None:
            return SideReport(part, read, problem, row.n)
        read.append(SideEntry(row.n, row.at, row.entry, row.hash))
        prev_n, prev = row.n, row.hash
    if head is None or head.n > prev_n:
        return SideReport(part, read, "truncated", prev_n + 1,
                          f"the head names entry {head.n if head else '?'}, the last is {prev_n}")
    if head.n < prev_n:
        return SideReport(part, read, "appended", head.n + 1,
                          f"the head names entry {head.n}, the last is {prev_n}")
    if head.hash != prev:
        return SideReport(part, read, "altered", prev_n, "its hash was rewritten; the head holds the old one")
    return SideReport(part, read)
