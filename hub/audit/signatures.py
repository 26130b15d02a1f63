"""``kagiban verify``'s signature part: every stored event and snapshot against the stations'
registered keys, and every outbox incarnation's sequence numbers for holes.

The hash chain shows a row changed after it was stored, unless whoever changed it recomputed
the chain; a station's signature cannot be recomputed without the station's private key, which
never leaves the unit. So, row by row:

- a signed row whose signature does not match its stored signed text: ``bad_signature``;
- a signed row whose columns differ from what its signed text says: ``altered``;
- a row signed by a key not registered for its station: ``unknown_key``;
- an unsigned row of a station that had a registered key when the row says it arrived, that
  follows the station's first signed row in the chain, or whose seq is above the first signed
  seq of its incarnation: ``unsigned`` (inserted by someone without the key). An enrolled station's
  unsigned rows before all of that are its rows from before enrollment: counted apart
  ("N rows from before enrollment (unsigned, accepted)"), never lumped with the rows of
  stations that were never enrolled;
- a sequence number missing inside an incarnation (they count from 1): ``missing`` (deleted);
- a snapshot whose image does not hash to its stored sha256: ``snapshot_replaced``; whose
  sha256 is not what the station signed: ``snapshot_bad_signature``; unsigned from an enrolled
  station: ``snapshot_unsigned``.

A snapshot whose image was deleted at the end of its retention (image empty) keeps its hash and
signature, and is checked on those.

``check_signatures(engine, rows=(first, last))`` checks only that stretch of the chain (the
monthly report's month, hub.audit.prefix): the rows' signatures, and holes between the seqs
stored in it; not the snapshots, nor seqs missing before the stretch's first or after its last.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, select

from hub.store.chain import canonical_json
from hub.store.schema import events, snapshots
from hub.stations.keys import StationKey, load_keys
from kagiban.event_signing import SignatureError, check, snapshot_statement
from kagiban.protocol import Event

_LOG = logging.getLogger(__name__)

_STREAM_ROWS = 2000
_STREAM_SNAPSHOTS = 20  # images are up to 4 MiB each
MAX_LINES = 50

_TEXT = {
    "bad_signature": "its signature does not match what is stored (altered, or inserted without the station's key)",
    "altered": "content differs from what the station signed",
    "unknown_key": "signed with a key not registered for this station",
    "unsigned": "unsigned, though its station signs every event (inserted without the station's key)",
    "missing": "missing (deleted)",
    "snapshot_replaced": "image does not match its stored hash (replaced)",
    "snapshot_bad_signature": "stored hash is not the one the station signed (image and hash replaced)",
    "snapshot_unsigned": "unsigned, though its station signs every snapshot (inserted or replaced)",
    "snapshot_unknown_key": "signed with a key not registered for this station",
}


@dataclass(frozen=True)
class SignatureProblem:
    """One finding: ``kind`` is a key of _TEXT, ``where`` names the row, seq or snapshot."""

    kind: str
    where: str
    detail: str = ""
    row_no: int = 0  # for the printed order: rows in chain order, then seqs, then snapshots

    def __str__(self) -> str:
        return f"TAMPERED: {self.where}: {_TEXT[self.kind]}" + (f": {self.detail}" if self.detail else "")


@dataclass
class SignatureReport:
    """What check_signatures() found."""

    signed: int = 0
    unsigned: int = 0  # rows of stations never enrolled (not a problem by themselves)
    before_enrollment: int = 0  # unsigned rows an enrolled station stored before its first key
    snapshots: int = 0
    keys: int = 0
    problems: list[SignatureProblem] = field(default_factory=list)
    rows: tuple[int, int] | None = None  # the stretch checked; None: every row and snapshot

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """The report as printed: problems first (at most MAX_LINES), then the summary."""
        ordered = sorted(self.problems, key=lambda p: p.row_no)  # stable: seqs and snapshots keep theirs
        out = [str(p) for p in ordered[:MAX_LINES]]
        if len(self.problems) > MAX_LINES:
            out.append(f"TAMPERED: ... and {len(self.problems) - MAX_LINES} more signature problems")
        state = "OK" if self.ok else "TAMPERED"
        what = (f"{self.signed} signed rows and {self.snapshots} snapshots" if self.rows is None
                else f"{self.signed} signed rows of rows {self.rows[0]}-{self.rows[1]}")
        out.append(
            f"{state}: {what} checked "
            f"against {self.keys} station keys; {self.before_enrollment} rows from before enrollment "
            f"(unsigned, accepted); {self.unsigned} rows unsigned from stations never enrolled"
        )
        return out


def _row_where(row: Any) -> str:
    return f"row {row.row_no} ({row.station} seq {row.seq})"


def _differences(row: Any, signed: str) -> list[str]:
    """The columns of ``row`` that differ from the event in its signed text."""
    try:
        ev = Event.model_validate_json(signed, strict=True)
    except ValidationError:
        return ["signed text"]
    expected = {
        "site": ev.site, "station": ev.station, "seq": ev.seq, "event_id": ev.id, "kind": ev.kind,
        "at": ev.at.isoformat(), "badge": ev.badge, "person": ev.person,
        "data": canonical_json(ev.data), "incarnation": ev.incarnation or "",
    }
    return [name for name, value in expected.items() if getattr(row, name) != value]


def check_signatures(engine: Engine, rows: tuple[int, int] | None = None) -> SignatureReport:
    """Check every stored signature and every incarnation's sequence numbers; with ``rows``
    (first, last row_no), only the rows of that stretch (no snapshots)."""
    report = SignatureReport(rows=rows)
    with engine.connect() as conn:
        keys = load_keys(conn)
        report.keys = len(keys)
        enrolled: dict[str, str] = {}  # station -> when its first key was registered
        for key in keys.values():
            enrolled[key.station] = min(enrolled.get(key.station, key.added_at), key.added_at)
        _check_events(conn, keys, enrolled, report, rows)
        _check_sequences(conn, report, rows)
        if rows is None:
            _check_snapshots(conn, keys, enrolled, report)
    return report


def _key_for(keys: dict[str, StationKey], kid: str, station: str) -> StationKey | None:
    key = keys.get(kid)
    return key if key is not None and key.station == station else None


def _check_events(conn, keys, enrolled: dict[str, str], report: SignatureReport,
                  rows: tuple[int, int] | None = None) -> None:
    cols = [events.c[name] for name in (
        "row_no", "site", "station", "seq", "event_id", "kind", "at", "badge", "person", "data",
        "incarnation", "received_at", "signed", "signature", "key_id")]
    first_signed_seq: dict[tuple[str, str], int] = {}  # (station, incarnation) -> lowest signed seq
    first_signed: dict[str, int] = {}  # station -> row_no of its first signed row
    unsigned_of_enrolled: list[Any] = []
    query = select(*cols)
    if rows is not None:
        query = query.where(events.c.row_no.between(*rows))
    result = conn.execution_options(yield_per=_STREAM_ROWS).execute(query.order_by(events.c.row_no))
    for row in result:
        if not row.signature:
            if row.station in enrolled:
                unsigned_of_enrolled.append(row)  # judged once every signed incarnation is known
            else:
                report.unsigned += 1
            continue
        report.signed += 1
        group = (row.station, row.incarnation)
        first_signed_seq[group] = min(first_signed_seq.get(group, row.seq), row.seq)
        first_signed.setdefault(row.station, row.row_no)
        key = _key_for(keys, row.key_id, row.station)
        if key is None:
            report.problems.append(SignatureProblem("unknown_key", _row_where(row), f"key {row.key_id}", row.row_no))
            continue
        try:
            check(key.public, row.signature, row.signed.encode("utf-8"))
        except SignatureError:
            report.problems.append(SignatureProblem("bad_signature", _row_where(row), row_no=row.row_no))
            continue
        differ = _differences(row, row.signed)
        if differ:
            report.problems.append(SignatureProblem("altered", _row_where(row), ", ".join(differ), row.row_no))
    for row in unsigned_of_enrolled:
        # received_at is the insider's to write; the chain order is not (the checkpoints hold it).
        if (row.received_at >= enrolled[row.station] or row.row_no > first_signed.get(row.station, 1 << 62)
                or row.seq > first_signed_seq.get((row.station, row.incarnation), 1 << 62)):
            report.problems.append(SignatureProblem(
                "unsigned", _row_where(row), f"its station's key was registered at {enrolled[row.station]}",
                row.row_no))
        else:
            report.before_enrollment += 1


def _check_sequences(conn, report: SignatureReport, rows: tuple[int, int] | None = None) -> None:
    """Holes in each incarnation's seqs (they start at 1; rows without one are not counted);
    within ``rows``, holes between the seqs stored there (a stretch starts anywhere)."""
    query = select(events.c.station, events.c.incarnation, events.c.seq).where(events.c.incarnation != "")
    result: Any
    if rows is not None:
        # Read by row number and sorted here: ordered by seq, SQLite would walk the whole
        # (station, incarnation, seq) index to find a month's rows.
        result = sorted(tuple(r) for r in conn.execute(query.where(events.c.row_no.between(*rows))))
    else:
        result = conn.execution_options(yield_per=_STREAM_ROWS).execute(
            query.order_by(events.c.station, events.c.incarnation, events.c.seq))
    group, expected = None, 1
    for station, incarnation, seq in result:
        if (station, incarnation) != group:
            group, expected = (station, incarnation), (1 if rows is None else seq)
        if seq > expected:
            gone = f"seq {expected}" if seq == expected + 1 else f"seqs {expected}-{seq - 1}"
            report.problems.append(SignatureProblem(
                "missing", f"{station} incarnation {incarnation} {gone}",
                f"stored seqs go from {expected - 1} to {seq}", 1 << 62))
        expected = seq + 1


def _check_snapshots(conn, keys, enrolled: dict[str, str], report: SignatureReport) -> None:
    cols = [snapshots.c[name] for name in (
        "event_id", "station", "sha256", "image", "received_at", "signature", "key_id")]
    result = conn.execution_options(yield_per=_STREAM_SNAPSHOTS).execute(
        select(*cols).order_by(snapshots.c.received_at, snapshots.c.event_id))
    for snap in result:
        where = f"snapshot of event {snap.event_id} ({snap.station})"
        if snap.image and hashlib.sha256(snap.image).hexdigest() != snap.sha256:
            report.problems.append(SignatureProblem("snapshot_replaced", where, row_no=1 << 63))
        if not snap.signature:
            if snap.station in enrolled and snap.received_at >= enrolled[snap.station]:
                report.problems.append(SignatureProblem("snapshot_unsigned", where, row_no=1 << 63))
            continue
        report.snapshots += 1
        key = _key_for(keys, snap.key_id, snap.station)
        if key is None:
            report.problems.append(SignatureProblem("snapshot_unknown_key", where, f"key {snap.key_id}", 1 << 63))
            continue
        try:
            check(key.public, snap.signature, snapshot_statement(snap.event_id, snap.station, snap.sha256))
        except SignatureError:
            report.problems.append(SignatureProblem("snapshot_bad_signature", where, row_no=1 << 63))
