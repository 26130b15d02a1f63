"""The station's durable outbox: every event is committed here before it is sent, and deleted
only when the hub acknowledges that it has committed it.

SQLite in WAL mode with synchronous=FULL, so a committed event survives kill -9 and a power cut.
The per-station sequence number lives in the same file and is allocated in the same
transaction as the event, so it survives restarts and never repeats. The stored payload is the
exact bytes sent, so a replay carries the original time and id.

Each outbox file has an incarnation id (a UUIDv7 made in the transaction that creates the
file's tables) that every event carries: ``seq`` counts within one incarnation, so a file that
had to be replaced (device.storage_check) starts again at 1 and the hub can tell the two apart.
A file made before incarnations existed keeps none (None) and its events go out without one.

With a ``signer`` (the station's enrolled key, kagiban.event_signing) each event is signed as it
is committed and the stored payload is the signed one, so a replay sends the same signature;
snapshots get their signature when they are committed too.

One thread at a time uses an Outbox: the agent creates it, hands it to its loop thread, and
closes it after that thread has ended (hence check_same_thread=False); it is never used by two
threads at once.
"""
from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import msgspec
import uuid6

from device.wire import Event, Snapshot, dumps, loads
from kagiban.event_signing import EventSigner, image_sha256

_LOG = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    event_id TEXT PRIMARY KEY,
    payload BLOB NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('next_seq', 1);
"""


CACHE_KIB = 256  # SQLite page cache of the outbox's connection, KiB


class Outbox:
    """Committed, not yet acknowledged events and snapshots of one station."""

    def __init__(self, path: str | Path, *, site: str, station: str, capacity: int = 200_000,
                 signer: EventSigner | None = None):
        self.path = Path(path)
        self.signer = signer
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.site = site
        self.station = station
        self.capacity = capacity
        self._page_ceiling: int | None = None  # SQLite's, while limit_pages is in force
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        # The page cache held at most 2 MiB (SQLite's default) of pages the station reads once:
        # events and snapshots are written, sent, acknowledged and deleted. 256 KiB keeps the
        # tables' upper levels; the WAL and the OS's file cache do the rest.
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        if self._db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone() is None:
            # A new file: its tables and its incarnation in one transaction, so no crash can
            # leave a file that looks like one made before incarnations.
            made = (str(uuid6.uuid7()), datetime.now(timezone.utc).isoformat())
            self._db.executescript(
                "BEGIN IMMEDIATE;" + _SCHEMA
                + "INSERT INTO info (key, value) VALUES ('incarnation', '%s'), ('created_at', '%s');"
                % made + "COMMIT;"
            )
        else:
            self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM info WHERE key='incarnation'").fetchone()
        self.incarnation: str | None = row[0] if row else None
        self._depth = self._db.execute("SELECT count(*) FROM events").fetchone()[0]

    def add(
        self,
        kind: str,
        at: datetime,
        *,
        badge: str | None = None,
        person: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Event:
        """Allocate the next seq and a UUIDv7, commit the event, return it."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            seq = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0]
            event = Event(
                id=str(uuid6.uuid7()),
                seq=seq,
                site=self.site,
                station=self.station,
                kind=kind,
                at=at,
                badge=badge,
                person=person,
                data=data or {},
                incarnation=self.incarnation,
            )
            payload = dumps(event)
            if self.signer is not None:
                payload = self.signer.sign_event(payload)
            db.execute(
                "INSERT INTO events (seq, id, kind, payload) VALUES (?, ?, ?, ?)",
                (seq, event.id, kind, payload),
            )
            db.execute("UPDATE meta SET value=? WHERE key='next_seq'", (seq + 1,))
            db.execute("COMMIT")
        except BaseException:
            # SQLite has already rolled back after some errors (a full disk: SQLITE_FULL); a
            # second ROLLBACK would raise and hide the real error.
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._depth += 1
        if self._depth == self.capacity:
            # Never drop: the heartbeat reports the depth so the hub can raise the alarm.
            _LOG.error("outbox holds %d events, its capacity; still accepting", self._depth)
        return event

    def add_snapshot(self, snapshot: Snapshot) -> None:
        """Commit a snapshot for sending (idempotent on its event id); signed if the outbox
        has a signer and the snapshot is not signed yet."""
        if self.signer is not None and snapshot.sig is None:
            sig = self.signer.sign_snapshot(
                snapshot.event_id, snapshot.station, image_sha256(snapshot.image_bytes()))
            snapshot = msgspec.structs.replace(snapshot, key_id=self.signer.key_id, sig=sig)
        self._db.execute(
            "INSERT OR IGNORE INTO snapshots (event_id, payload) VALUES (?, ?)",
            (snapshot.event_id, dumps(snapshot)),
        )

    def pending(self, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, bytes]]:
        """Unacknowledged events with seq > after_seq, oldest first."""
        return self._db.execute(
            "SELECT seq, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()

    def payloads(self, seqs: Iterable[int]) -> list[tuple[int, bytes]]:
        """The stored payloads of these seqs that are still unacknowledged."""
        seqs = list(seqs)
        out: list[tuple[int, bytes]] = []
        for i in range(0, len(seqs), 500):
            chunk = seqs[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out += self._db.execute(
                f"SELECT seq, payload FROM events WHERE seq IN ({marks}) ORDER BY seq", chunk
            ).fetchall()
        return out

    def pending_snapshots(self, limit: int = 20) -> list[tuple[str, bytes]]:
        """Unacknowledged snapshots."""
        return self._db.execute(
            "SELECT event_id, payload FROM snapshots ORDER BY rowid LIMIT ?", (limit,)
        ).fetchall()

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete acknowledged events; returns how many were still here."""
        seqs = list(seqs)
        deleted = 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for i in range(0, len(seqs), 500):
                chunk = seqs[i : i + 500]
                marks = ",".join("?" * len(chunk))
                deleted += self._db.execute(
                    f"DELETE FROM events WHERE seq IN ({marks})", chunk
                ).rowcount
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._depth -= deleted
        return deleted

    def ack_snapshots(self, event_ids: Iterable[str]) -> int:
        """Delete acknowledged snapshots."""
        ids = list(event_ids)
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        return self._db.execute(f"DELETE FROM snapshots WHERE event_id IN ({marks})", ids).rowcount

    def depth(self) -> int:
        """How many events wait for an acknowledgement."""
        return self._depth

    def snapshot_depth(self) -> int:
        """How many snapshots wait for an acknowledgement."""
        return self._db.execute("SELECT count(*) FROM snapshots").fetchone()[0]

    def next_seq(self) -> int:
        """The seq the next event will get."""
        return self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0]

    def events(self) -> list[Event]:
        """Every waiting event, decoded (for status pages and tests)."""
        rows = self._db.execute("SELECT payload FROM events ORDER BY seq").fetchall()
        return [loads(Event, p) for (p,) in rows]

    def limit_pages(self, pages: int | None = None) -> int:
        """Let the file grow no further than ``pages`` SQLite pages (``None``: its size now), so
        every write that needs more fails with "database or disk is full", as on a full SD card;
        a fault drill. Returns the limit set; ``lift_page_limit`` undoes it.
        """
        if self._page_ceiling is None:  # the limit is per connection: SQLite's, to restore
            self._page_ceiling = self._db.execute("PRAGMA max_page_count").fetchone()[0]
        if pages is None:
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        return self._db.execute(f"PRAGMA max_page_count={int(pages)}").fetchone()[0]

    def lift_page_limit(self) -> None:
        """Undo ``limit_pages``: the file may grow as far as SQLite and the disk allow."""
        if self._page_ceiling is not None:
            self._db.execute(f"PRAGMA max_page_count={self._page_ceiling}")
            self._page_ceiling = None

    def close(self) -> None:
        self._db.close()
