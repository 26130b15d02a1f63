"""A real SQLite store filled through the real ingest with one enrolled station's signed
events and snapshots, and the insider's tools: raw SQL and the project's own hash function;
and the auditor's: ``kagiban verify`` on a copy of a store, with or without the checkpoints."""
from __future__ import annotations

import base64
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import uuid6

from hub.store import migrate
from hub.store.chain import content_of, row_hash
from hub.store.db import make_engine
from hub.ingest.writer import Ingest
from hub.store.schema import GENESIS_HASH
from hub.stations.keys import add_key
from kagiban import cli
from kagiban.event_signing import EventSigner, create_station_key, image_sha256
from kagiban.protocol import Event, Snapshot, dumps
from kagiban.signing import public_key_b64
from tests.hub.helpers import JPEG, JST, SITE

STATION = "cabinet-1"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SignedStore:
    """The store's file, the station's signer and its outbox incarnation."""

    db: Path
    signer: EventSigner
    incarnation: str
    snapshot_event: str  # the event id of the one stored snapshot


def signed_event(signer: EventSigner, seq: int, incarnation: str, *, station: str = STATION,
                 person: str = "staff-001") -> tuple[Event, bytes]:
    """An event as an enrolled station commits it, and its signed wire payload."""
    ev = Event(id=str(uuid6.uuid7()), seq=seq, site=SITE, station=station, kind="key.used",
               at=datetime(2026, 12, 4, 9, 0, seq % 60, tzinfo=JST), badge="012E4CD2A5B71F03",
               person=person, data={"n": seq, "note": "鍵"}, incarnation=incarnation)
    return ev, signer.sign_event(dumps(ev))


def signed_snapshot(signer: EventSigner, event_id: str, *, station: str = STATION, image: bytes = JPEG) -> bytes:
    """A snapshot payload for ``event_id`` signed as the station's outbox signs it."""
    snap = Snapshot(event_id=event_id, site=SITE, station=station, taken_at=datetime(2026, 12, 4, 9, 0, tzinfo=JST),
                    image=base64.b64encode(image).decode(), key_id=signer.key_id,
                    sig=signer.sign_snapshot(event_id, station, image_sha256(image)))
    return dumps(snap)


def fill(folder: Path, rows: int = 8) -> SignedStore:
    """``rows`` signed events of one station (seq 1..rows) and a snapshot of event 3, stored
    through the hub's ingest."""
    db = folder / "kagiban.db"
    engine = make_engine(f"sqlite:///{db}")
    migrate.upgrade(engine)
    key = create_station_key(folder / "station.key")
    add_key(engine, STATION, public_key_b64(key))
    signer = EventSigner(key)
    incarnation = str(uuid6.uuid7())
    ingest = Ingest(engine, prefix="p")
    snapshot_event = ""
    for seq in range(1, rows + 1):
        ev, payload = signed_event(signer, seq, incarnation)
        ingest.submit(f"p/{SITE}/{STATION}/event", payload)
        if seq == 3:
            snapshot_event = ev.id
            ingest.submit(f"p/{SITE}/{STATION}/snapshot", signed_snapshot(signer, ev.id))
    ingest.start()
    ingest.stop()
    engine.dispose()
    return SignedStore(db, signer, incarnation, snapshot_event)


def fill_enrolled_later(folder: Path, before: int = 3, after: int = 4) -> SignedStore:
    """A station that sent ``before`` unsigned events (seq 1..before), was then enrolled, and
    sent ``after`` signed ones in the same outbox incarnation, all through the hub's ingest."""
    db = folder / "kagiban.db"
    engine = make_engine(f"sqlite:///{db}")
    migrate.upgrade(engine)
    key = create_station_key(folder / "station.key")
    signer = EventSigner(key)
    incarnation = str(uuid6.uuid7())
    ingest = Ingest(engine, prefix="p")
    for seq in range(1, before + 1):
        ev, _signed = signed_event(signer, seq, incarnation)
        ingest.submit(f"p/{SITE}/{STATION}/event", dumps(ev))
    ingest.start()
    ingest.stop()
    add_key(engine, STATION, public_key_b64(key))
    ingest = Ingest(engine, prefix="p")
    for seq in range(before + 1, before + after + 1):
        ingest.submit(f"p/{SITE}/{STATION}/event", signed_event(signer, seq, incarnation)[1])
    ingest.start()
    ingest.stop()
    engine.dispose()
    return SignedStore(db, signer, incarnation, "")


def recompute_chain(db: Path) -> None:
    """What an insider with the database does after changing rows: every row's prev_hash and
    hash and the chain head recomputed with the project's own hash function."""
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    with con:
        prev, last = GENESIS_HASH, 0
        for row in con.execute("SELECT * FROM events ORDER BY row_no").fetchall():
            digest = row_hash(prev, content_of(_Row(row)))
            con.execute("UPDATE events SET prev_hash=?, hash=? WHERE row_no=?", (prev, digest, row["row_no"]))
            prev, last = digest, row["row_no"]
        con.execute("UPDATE chain_head SET row_no=?, hash=? WHERE id=1", (last, prev))
    con.close()


class _Row:
    def __init__(self, row: sqlite3.Row):
        self._row = row

    def __getattr__(self, name: str):
        return self._row[name]


def kagiban_verify(db: Path) -> subprocess.CompletedProcess:
    """``kagiban verify --db DB`` as an auditor runs it."""
    return subprocess.run([sys.executable, "-m", "kagiban.cli", "verify", "--db", str(db)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def copy_store(data: Path, tmp_path: Path) -> Path:
    """A test's own copy of a filled hub data folder; the path of its store."""
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    return copy / "kagiban.db"


def audit(trail, db: Path, capsys) -> tuple[int, dict[str, str]]:
    """``kagiban verify --db DB --checkpoints LOG --audit-key KEY`` (``trail.log``,
    ``trail.audit_key``): exit code, line per part."""
    capsys.readouterr()
    code = cli.main(["verify", "--db", str(db), "--checkpoints", str(trail.log), "--audit-key", trail.audit_key])
    lines = capsys.readouterr().out.splitlines()
    print("\n".join(lines))  # shown with -s: the lines the reliability doc quotes
    return code, {line.split(":", 1)[0]: line for line in lines}
