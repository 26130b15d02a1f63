"""Ingest: validate what stations publish, store it in batches, then acknowledge it.

paho's network thread calls ``submit``; one writer thread owns every write (the datasette
pattern) and turns each batch into ONE transaction: bad messages go to ``quarantine``,
new events are appended to the hash chain in arrival order (idempotent on
(station, incarnation, seq): a station's outbox that had to be replaced counts again from 1
under a new incarnation), snapshots are stored once per event id, status and heartbeat update
``stations``. An event whose time is far from when it was received is stored with a
``time_flag`` (TimeBounds); a heartbeat's time against its receive time is the station's clock
offset. A snapshot is stored only for an event of the same station: one naming another
station's event is quarantined as ``forged_origin``; one whose event is not stored yet is
held back unacknowledged (the station sends it again) up to SNAPSHOT_HOLDS times, then
quarantined as ``orphan_snapshot``. Only after the commit does ``on_acks`` learn which
sequence numbers are safe, so a station never deletes an event the hub could still lose.

Events are read (parsed, schema-checked, made into rows, signatures checked:
hub/ingest/reading.py) before the transaction; a large batch's in the verifier processes
(hub/ingest/verify_workers.py), so this process keeps only paho's reading and the writing. While
one batch is read there, the writer stores the batch before it, and a batch is written only once
all its reads and checks are done (``_Prepared``). A batch ends at an urgent event (one that
may raise a critical alert, URGENT_KINDS): it is committed without waiting for more, and the
``in_transaction`` hook (the hub's: hub.alerting.rules) stores its alert in the same
transaction; what the hook hands back (publishing the alert) runs right after the commit,
before the acks, so an alert is never out before its event and its own row are committed.

Nothing a station sends may stop the writer: if a batch fails, its messages are stored
one per transaction, and one that still fails is quarantined as ``internal_error``.
"""
from __future__ import annotations

import hashlib
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from hub.audit.entries import next_quarantine_id, record_quarantine, record_snapshots
from hub.store.chain import content_json, row_hash_text
from hub.store.db import FencedOut, begin_write
from hub.ingest.reading import ReadEvent, ReadJob, TimeBounds, read_event, read_events
from hub.ingest.verify_workers import Check, VerifierPool
from hub.ingest.refusals import Refusal, first_refusals, fold_repeats
from hub.store.schema import (
    QUARANTINE_PAYLOAD_MAX,
    chain_head,
    events,
    quarantine,
    snapshots,
    station_log,
    stations,
)
from hub.stations.state import DOOR_KINDS
from hub.stations.keys import KeyRing, Signed, StationKey
from hub.store.timestamps import now_utc, utc_text
from kagiban import events as ev
from kagiban.protocol import (
    Ack,
    Heartbeat,
    ProtocolError,
    Snapshot,
    Status,
    parse_station_payload,
    parse_topic,
    ranges,
)

_LOG = logging.getLogger(__name__)

AckCallback = Callable[[list[tuple[str, str, Ack]]], None]


@dataclass(frozen=True)
class ClockReading:
    """A station's clock as one heartbeat showed it: ``offset_s`` is its time minus the hub's
    receive time; ``synced`` what the station says of its own clock (None: it cannot tell)."""

    site: str
    station: str
    offset_s: float
    synced: bool | None
    received_at: datetime


@dataclass
class Committed:
    """What one transaction stored, handed to ``on_committed`` after the commit (for the rules,
    the live page and metrics): new event rows with their row_no, station state changes
    (station_log rows) and the heartbeats received."""

    events: list[dict[str, Any]] = field(default_factory=list)
    presence: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: list[Heartbeat] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)  # event ids of new snapshots
    clocks: list[ClockReading] = field(default_factory=list)  # one per heartbeat
    refused: list[Refusal] = field(default_factory=list)  # signed events quarantined a first time
    # Event ids whose event rules already ran inside this transaction (``InTransaction``): the
    # rules thread does not judge them again.
    judged: set[str] = field(default_factory=set)


CommittedCallback = Callable[[Committed], None]


@dataclass
class InTransaction:
    """What ``in_transaction`` did inside a batch's transaction: the event ids it judged (their
    alerts are stored in the same transaction as the events) and what to run once that
    transaction has committed (publishing those alerts), before the acks."""

    judged: set[str]
    after_commit: Callable[[], None]


# Called on the writer thread inside the transaction, after the batch's new event rows are
# inserted; its writes commit (or fail) with them. The hub raises the alerts of urgent
# events here (hub.alerting.rules): one commit, one fsync, from a door edge to its alert.
InTransactionHook = Callable[[Connection, list[dict[str, Any]]], InTransaction | None]

# A batch also stops growing at this many payload bytes (snapshots are up to 4 MiB each).
BATCH_MAX_BYTES = 32 * 1024 * 1024
_IN_CHUNK = 500  # values per SQL IN (...), well under every database's parameter limit
_DETAIL_MAX = 1000
_STOP = object()
# A snapshot whose event is not stored is held back (not acked) this many times; the station
# resends it after its ack timeout, by when its event (sent first) is normally stored.
SNAPSHOT_HOLDS = 3
_HELD_KEPT = 10_000  # snapshot ids whose holds are counted
# Signature checks of a batch run in this many worker processes (hub/ingest/verify_workers.py) once it
# holds at least _PARALLEL_MIN (fewer are checked on the writer thread: handing them over would
# cost more).
VERIFIERS = 2
_PARALLEL_MIN = 32
# Events that may raise a critical alert (hub.alerting.rules): a batch ends at one, which is
# committed at once instead of after the batch wait, so the alert (raised only from what is
# stored) follows within a commit of its arrival.
URGENT_KINDS = frozenset({ev.DoorForced.KIND, ev.DoorIntrusion.KIND, ev.StorageFailed.KIND,
                          ev.StorageCorrupt.KIND, ev.PolicyRejected.KIND})
_URGENT_MARK = re.compile(rb'"kind"\s*:\s*"(?:%s)"' % b"|".join(re.escape(k.encode()) for k in sorted(URGENT_KINDS)))

# Built once: SQLAlchemy then reuses each one's cache key and compiled form, which matters
# because a batch from many stations runs these once per station (a statement built anew costs
# about three times as much as the query itself on SQLite).
# A station incarnation's highest stored seq, one index probe: a batch's seqs above it cannot
# be stored yet, so only resent ones (at or below it) are looked up one by one.
_HIGH_SEQ = select(func.max(events.c.seq)).where(
    events.c.station == bindparam("b_station"), events.c.incarnation == bindparam("b_inc"))
_SEQS_STORED = select(events.c.seq, events.c.event_id).where(
    events.c.station == bindparam("b_station"), events.c.incarnation == bindparam("b_inc"),
    events.c.seq.in_(bindparam("b_values", expanding=True)))
_IDS_STORED = select(events.c.event_id, events.c.station, events.c.incarnation, events.c.seq).where(
    events.c.event_id.in_(bindparam("b_values", expanding=True)))
_SNAPS_STORED = select(snapshots.c.event_id).where(snapshots.c.event_id.in_(bindparam("b_values", expanding=True)))
_STATIONS_READ = select(stations).where(stations.c.station.in_(bindparam("b_values", expanding=True)))
_EVENTS_INSERT = insert(events)
_HEAD_READ = select(chain_head.c.row_no, chain_head.c.hash).where(chain_head.c.id == 1)
_HEAD_MOVE = update(chain_head).where(chain_head.c.id == 1).values(row_no=bindparam("b_row_no"), hash=bindparam("b_hash"))
_COMPILED_INSERTS: dict[str, Any] = {}  # dialect name -> _EVENTS_INSERT compiled for it
_STATION_COLUMNS = tuple(c.name for c in stations.c if c.name != "station")
# One executemany for every station a batch touched (bind names may not equal column names).
_STATION_UPDATE = update(stations).where(stations.c.station == bindparam("b_station")).values(
    {name: bindparam(f"v_{name}") for name in _STATION_COLUMNS})


# A batch whose station keys changed between its check and its write is checked again, at most
# this many times (keys change by hand, rarely); then it is not stored and not acked: resent.
_RECHECKS = 3


class _KeysMoved(Exception):
    """A station key was added or retired after the batch was checked (KeyRing.moved)."""


@dataclass
class _Item:
    """One received message on its way through a batch."""

    topic: str
    payload: bytes
    received_at: str
    received: datetime | None = None
    site: str = ""
    station: str = ""
    channel: str = ""
    model: BaseModel | None = None
    row: dict[str, Any] = field(default_factory=dict)  # the events/snapshots row, chain columns excepted
    reason: str | None = None  # set when the message is to be quarantined
    detail: str = ""
    signed: Signed | None = None  # a snapshot's signature, checked before the transaction
    content: str = ""  # an event row's canonical text, hashed into the chain
    seq: int | None = None  # an event's seq and incarnation, once its payload parsed
    incarnation: str | None = None


@dataclass
class _Prepared:
    """A batch whose reads and signature checks may still be running in the verifier processes."""

    items: list[_Item]
    urgent: bool = False  # ends at an urgent event: written at once, not after the next batch's reading
    # The messages as received, and the station keys' mark they were checked with: if a key was
    # added or retired since, the batch is checked again before it is written (KeyRing.moved).
    batch: list[tuple[str, bytes, datetime]] = field(default_factory=list)
    keys: tuple | None = None
    # Each chunk of events read in a worker: its Future, its items and what was sent.
    reads: list[tuple[Future, list[_Item], ReadJob]] = field(default_factory=list)
    # Each chunk's checks in a worker: its Future, its items and what was sent.
    checks: list[tuple[Future, list[_Item], list[Check]]] = field(default_factory=list)
    pool: VerifierPool | None = None

    def wait(self) -> None:
        """Block until every check is done and mark the items whose signature does not match
        (checked here instead if a worker died); re-raises a check that failed unexpectedly
        (the batch is then not written, so nothing unchecked is stored)."""
        for future, items, sent in self.checks:
            assert self.pool is not None
            for item, detail in zip(items, self.pool.answers(future, sent), strict=True):
                if detail is not None:
                    item.reason, item.detail = "bad_signature", detail


@dataclass
class _Outcome:
    """What one committed transaction did; applied to counters and acks after the commit."""

    new: int = 0
    duplicates: int = 0
    quarantined: int = 0
    snapshots: int = 0
    held: int = 0  # snapshots held back until their event is stored
    # (site, station, incarnation) -> acked seqs and snapshot ids; snapshots go with "".
    acks: dict[tuple[str, str, str], tuple[set[int], list[str]]] = field(default_factory=dict)
    committed: Committed = field(default_factory=Committed)
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def ack(self, site: str, station: str, seq: int | None = None, snapshot: str | None = None,
            incarnation: str = ""):
        seqs, snaps = self.acks.setdefault((site, station, incarnation), (set(), []))
        if seq is not None:
            seqs.add(seq)
        if snapshot is not None and snapshot not in snaps:
            snaps.append(snapshot)

    def merge(self, other: "_Outcome") -> None:
        self.new += other.new
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.snapshots += other.snapshots
        self.held += other.held
        for name in ("events", "presence", "heartbeats", "snapshots", "clocks", "refused"):
            getattr(self.committed, name).extend(getattr(other.committed, name))
        self.committed.judged |= other.committed.judged
        self.after_commit.extend(other.after_commit)
        for (site, station, inc), (seqs, snaps) in other.acks.items():
            for seq in seqs:
                self.ack(site, station, seq=seq, incarnation=inc)
            for snap in snaps:
                self.ack(site, station, snapshot=snap, incarnation=inc)


class Ingest:
    """The writer thread between paho and the store.

    Counters for metrics: ``ingested`` (new events stored), ``duplicates`` (events and
    snapshots already stored), ``quarantined``, ``snapshots`` (new snapshots stored),
    ``batches`` (transactions), ``held`` (snapshots held back until their event is stored).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        prefix: str,
        known_stations: Mapping[str, str] | None = None,
        batch_max: int = 500,
        batch_wait_s: float = 0.01,
        time_bounds: TimeBounds | None = None,
        on_acks: AckCallback | None = None,
        on_committed: CommittedCallback | None = None,
        in_transaction: InTransactionHook | None = None,
        keys: KeyRing | None = None,
        warm_verifiers: bool = False,
    ):
        self._engine = engine
        # The stations' registered keys: signatures are checked before the transaction.
        self._keys = keys if keys is not None else KeyRing(engine)
        self._pool: VerifierPool | None = None  # made at the first large signed batch
        # The hub starts the verifier processes at once if a station is enrolled (see _warm).
        self._warm_verifiers = warm_verifiers
        self._prefix = prefix
        # station id -> site; None accepts any station that speaks the protocol.
        self._known = dict(known_stations) if known_stations is not None else None
        self._batch_max = batch_max
        self._batch_wait_s = batch_wait_s
        self._bounds = time_bounds or TimeBounds()
        # Snapshot event id -> times held back (written by the writer thread only).
        self._held: dict[str, int] = {}
        self._on_acks = on_acks
        self._on_committed = on_committed
        self._in_transaction = in_transaction
        # SimpleQueue: put and get in C, without Queue's locks (paho's thread puts every message).
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="kagiban-ingest", daemon=True)
        self.ingested = 0
        self.duplicates = 0
        self.quarantined = 0
        self.snapshots = 0
        self.batches = 0
        self.held = 0

    def start(self) -> "Ingest":
        """Start the writer thread."""
        self._thread.start()
        return self

    def submit(self, topic: str, payload: bytes | bytearray) -> None:
        """Hand over one received message; safe from any thread, never blocks."""
        if self._closed:
            # Not acked, so the station sends it again to the next hub run.
            _LOG.debug("ingest stopped; dropping a message on %s", topic)
            return
        self._queue.put((topic, bytes(payload), now_utc()))

    @property
    def backlog(self) -> int:
        """Messages received and not yet taken into a batch."""
        return self._queue.qsize()

    def stop(self, timeout: float = 30.0) -> None:
        """Store everything submitted so far, then end the writer thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                _LOG.error("ingest writer did not finish within %.0f s", timeout)
        if self._pool is not None:
            self._pool.close()
        _LOG.info("ingest stopped: %d events stored in %d transactions (%d duplicates, %d quarantined)",
                  self.ingested, self.batches, self.duplicates, self.quarantined)

    # --- the writer thread ---

    def _run(self) -> None:
        # Two batches in flight at most: ``pending`` (parsed, its checks running) is written
        # after the next batch is parsed and its checks started, so the checks of one overlap
        # the parsing and the transaction of another. With nothing more waiting in the queue
        # the pending batch is written at once: no message waits longer than it did before.
        pending: _Prepared | None = None
        if self._warm_verifiers:
            self._guard(self._warm, [])
        while True:
            batch, stopping = self._take(wait=pending is None)
            ready = self._guard(self._prepare, batch) if batch else None
            if pending is not None:
                self._guard(self._finish, pending)
            pending = ready
            if ready is not None and ready.urgent:
                # An urgent event's batch does not wait for the next batch to be read first.
                self._guard(self._finish, ready)
                pending = None
            if stopping:
                if pending is not None:
                    self._guard(self._finish, pending)
                return

    def _warm(self, _unused: list) -> None:
        """Start the verifier processes in the background if any station is enrolled (the
        first large batch would otherwise wait ~0.3 s for their imports)."""
        self._keys.sync()
        if self._keys.enrolled:
            threading.Thread(target=self._verifiers().warm, name="kagiban-verify-start", daemon=True).start()

    def warm_up(self) -> None:
        """Before ``start()``: start the verifier processes now (blocking) if any station is
        enrolled (bench/ingest.py, so their start-up is not timed)."""
        self._keys.sync()
        if self._keys.enrolled:
            self._verifiers().warm()

    @staticmethod
    def _guard(step: Callable[[Any], Any], arg: Any) -> Any:
        try:
            return step(arg)
        except Exception:  # the last guard: log, keep the thread alive
            n = len(arg.items) if isinstance(arg, _Prepared) else len(arg)
            _LOG.exception("ingest batch of %d lost; stations will send it again", n)
            return None

    def _take(self, wait: bool = True) -> tuple[list[tuple[str, bytes, datetime]], bool]:
        """Up to batch_max messages, waiting at most batch_wait_s after the first; with
        ``wait`` False only those already queued (none: an empty batch at once). A batch ends
        at an urgent event (URGENT_KINDS): it is stored without waiting for more."""
        if wait:
            first = self._queue.get()
        else:
            try:
                first = self._queue.get_nowait()
            except queue.Empty:
                return [], False
        if first is _STOP:
            return [], True
        batch = [first]
        if _urgent(first):
            return batch, False
        size = len(first[1])
        deadline = time.monotonic() + (self._batch_wait_s if wait else 0.0)
        while len(batch) < self._batch_max and size < BATCH_MAX_BYTES:
            remaining = deadline - time.monotonic()
            try:
                nxt = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is _STOP:
                return batch, True
            batch.append(nxt)
            if _urgent(nxt):
                break
            size += len(nxt[1])
        return batch, False

    def _prepare(self, batch: list[tuple[str, bytes, datetime]]) -> _Prepared:
        """Read a batch and start its signature checks, with the station keys as last read
        (whether one changed since is asked under the write lock, in ``_finish``): a large
        batch's events are read in the verifier processes, the rest here."""
        self._keys.refresh()
        prepared = _Prepared([self._addressed(topic, payload, received) for topic, payload, received in batch],
                             urgent=_urgent(batch[-1]), batch=batch, keys=self._keys.mark)
        todo = [i for i in prepared.items if i.reason is None]
        event_items = [i for i in todo if i.channel == "event"]
        if len(event_items) >= _PARALLEL_MIN:
            self._read_elsewhere(prepared, event_items)
            todo = [i for i in todo if i.channel != "event"]
        for item in todo:
            self._read(item)
        self._verify_signatures(prepared)
        return prepared

    def _read_elsewhere(self, prepared: _Prepared, items: list[_Item]) -> None:
        """Start reading the event ``items`` in the verifier processes, one chunk per process."""
        pool = prepared.pool = self._verifiers()
        step = -(-len(items) // pool.workers)
        for start in range(0, len(items), step):
            chunk = items[start:start + step]
            keys, enrolled = self._keys.table({i.station for i in chunk})
            job = ReadJob([(i.site, i.station, i.payload, i.received, i.received_at) for i in chunk],  # type: ignore[misc]
                          keys, enrolled, self._bounds)
            prepared.reads.append((pool.submit(read_events, job), chunk, job))

    def _finish(self, prepared: _Prepared, again: int = 0) -> None:
        """Wait for the batch's reads and checks, then store it in one transaction and
        acknowledge it; checked again first if a station key was added or retired since."""
        for future, chunk, job in prepared.reads:
            assert prepared.pool is not None
            # Read here instead if the worker died: nothing is stored unread or unchecked.
            for item, read in zip(chunk, prepared.pool.result(future, read_events, job), strict=True):
                self._take_read(item, read)
        prepared.wait()
        items = prepared.items
        try:
            with begin_write(self._engine) as conn:
                if self._keys.moved(conn, prepared.keys):
                    raise _KeysMoved
                outcome = self._write(conn, items)
        except _KeysMoved:
            if again >= _RECHECKS:
                raise RuntimeError(f"the station keys changed during each of {again + 1} checks of the batch")
            self._keys.sync()
            self._finish(self._prepare(prepared.batch), again + 1)
            return
        except FencedOut as exc:
            _LOG.error("batch of %d not stored: %s", len(items), exc)
            outcome = _Outcome()
        except Exception:
            _LOG.warning("batch of %d failed; storing its messages one by one", len(items), exc_info=True)
            outcome = _Outcome()
            for item in items:
                # Without the in-transaction hook: if it was what failed, the events are still
                # stored, and the rules thread raises their alerts after the commit instead.
                outcome.merge(self._write_alone(item, prepared.keys))
        self.batches += 1
        self.ingested += outcome.new
        self.duplicates += outcome.duplicates
        self.quarantined += outcome.quarantined
        self.snapshots += outcome.snapshots
        self.held += outcome.held
        # What was stored with the events (their alerts) goes out first: the critical path.
        for step in outcome.after_commit:
            try:
                step()
            except Exception:
                _LOG.exception("after-commit step failed")
        self._acknowledge(outcome)
        c = outcome.committed
        if self._on_committed is not None and (c.events or c.presence or c.heartbeats or c.snapshots or c.refused):
            try:
                self._on_committed(c)
            except Exception:
                # What follows a commit (rules, the live page) must never stop ingest.
                _LOG.exception("after-commit handler failed")

    def _write_alone(self, item: _Item, keys: tuple | None) -> _Outcome:
        """One message in its own transaction; quarantined as internal_error if that fails."""
        try:
            with begin_write(self._engine) as conn:
                if self._keys.moved(conn, keys):
                    raise _KeysMoved
                return self._write(conn, [item], hook=False)
        except (FencedOut, _KeysMoved):
            # This hub lost its failover lease (nothing may be stored or acked here), or a key
            # changed since the message was checked: not acked, the station sends it again.
            return _Outcome()
        except Exception as exc:
            _LOG.error("cannot store a message on %s; quarantining it", item.topic, exc_info=True)
            item.reason, item.detail = "internal_error", f"{exc.__class__.__name__}: {exc}"
        try:
            with begin_write(self._engine) as conn:
                return self._write(conn, [item], hook=False)
        except Exception:
            _LOG.exception("cannot quarantine a message on %s either; dropped unacked", item.topic)
            return _Outcome()

    def _acknowledge(self, outcome: _Outcome) -> None:
        if not outcome.acks or self._on_acks is None:
            return
        # One ack per station and incarnation: seqs count within an incarnation.
        acks = [
            (site, station, Ack(station=station, seqs=ranges(seqs), snapshots=snaps, incarnation=inc or None))
            for (site, station, inc), (seqs, snaps) in outcome.acks.items()
        ]
        try:
            self._on_acks(acks)
        except Exception:
            # The data is committed; a lost ack only means the station sends it again.
            _LOG.exception("sending acks failed")

    # --- validation, outside the transaction ---

    def _addressed(self, topic: str, payload: bytes, received: datetime) -> _Item:
        """A received message with its topic read (and its station checked against the list)."""
        item = _Item(topic=topic, payload=payload, received_at=utc_text(received), received=received)
        try:
            item.site, item.station, item.channel = parse_topic(self._prefix, topic)
            self._check_known(item.site, item.station)
        except ProtocolError as exc:
            item.reason, item.detail = exc.reason, exc.detail
        return item

    def _read(self, item: _Item) -> None:
        """Read an addressed message's payload here, on the writer thread."""
        if item.channel == "event":
            assert item.received is not None
            self._take_read(item, read_event(item.site, item.station, item.payload, item.received,
                                             item.received_at, self._keys.find, self._keys.has_key(item.station),
                                             self._bounds))
            return
        try:
            item.model = parse_station_payload(item.site, item.station, item.channel, item.payload)
            if isinstance(item.model, Snapshot):
                item.row = _snapshot_row(item.model, item.received_at)
                item.signed = signed = self._keys.check_snapshot(item.station, item.model, item.row["sha256"])
                item.row.update(signature=signed.signature, key_id=signed.key_id)
        except ProtocolError as exc:
            item.reason, item.detail = exc.reason, exc.detail
        except Exception as exc:  # a message the protocol accepts but the hub cannot hold
            _LOG.warning("unexpected error reading a message on %s", item.topic, exc_info=True)
            item.reason, item.detail = "internal_error", f"{exc.__class__.__name__}: {exc}"

    def _take_read(self, item: _Item, read: ReadEvent) -> None:
        """Fill an event's item from its reading; a retired key's backlog is allowed here."""
        item.row, item.content = read.row or {}, read.content
        item.seq, item.incarnation = read.seq, read.incarnation
        if read.reason is not None:
            item.reason, item.detail = read.reason, read.detail
        elif (column := _nul_column(item.row)) is not None:
            # PostgreSQL holds no NUL in text (SQLite does): refused the same on both stores,
            # with a reason, instead of failing the insert. (Inside ``data`` it is JSON's \u0000.)
            item.reason, item.detail = "bad_schema", f"{column}: a NUL character"
        if read.retired is not None:
            try:
                self._keys.allow_backlog(item.station, read.incarnation or "", StationKey(*read.retired))
            except ProtocolError as exc:
                item.reason, item.detail = exc.reason, exc.detail
            except Exception as exc:
                _LOG.warning("cannot check a retired key's backlog for %s", item.station, exc_info=True)
                item.reason, item.detail = "internal_error", f"{exc.__class__.__name__}: {exc}"

    def _hold(self, event_id: str) -> bool:
        """Count one more hold of a snapshot whose event is not stored; False once it has been
        held SNAPSHOT_HOLDS times (then it goes to quarantine)."""
        count = self._held.pop(event_id, 0) + 1
        if count > SNAPSHOT_HOLDS:
            return False
        if len(self._held) >= _HELD_KEPT:
            self._held.pop(next(iter(self._held)))  # the oldest: a dict keeps insertion order
        self._held[event_id] = count
        return True
    def _verify_signatures(self, prepared: _Prepared) -> None:
        """Start the batch's signature checks, split over the verifier processes: Ed25519
        verification is most of the cost of a signed event (bench/ingest.py), and in threads
        of the hub each check waited for the GIL; ``prepared.wait()`` collects the answers."""
        todo = [i for i in prepared.items if i.reason is None and i.signed is not None and i.signed.pending]
        if len(todo) < _PARALLEL_MIN:
            _verify_items(todo)
            return
        pool = self._verifiers()
        step = -(-len(todo) // pool.workers)
        prepared.pool = pool
        for start in range(0, len(todo), step):
            chunk = todo[start:start + step]
            sent = [i.signed.check_args for i in chunk]  # type: ignore[union-attr]
            prepared.checks.append((pool.check(sent), chunk, sent))

    def _verifiers(self) -> VerifierPool:
        if self._pool is None:
            self._pool = VerifierPool(VERIFIERS)
        return self._pool

    @property
    def verifiers(self) -> VerifierPool | None:
        """The signature check workers, once started (for tests and diagnostics)."""
        return self._pool

    def _check_known(self, site: str, station: str) -> None:
        if self._known is None:
            return
        listed_site = self._known.get(station)
        if listed_site is None:
            raise ProtocolError("unknown_station", f"{station} is not in the hub's station list")
        if listed_site != site:
            raise ProtocolError("unknown_station", f"{station} is listed in site {listed_site}, not {site}")

    # --- the transaction ---

    def _write(self, conn: Connection, items: list[_Item], hook: bool = True) -> _Outcome:
        out = _Outcome()
        good = [i for i in items if i.reason is None]
        by_key, by_id = _stored_events(conn, [i.row for i in good if i.channel == "event"])
        snap_ids = [i.row["event_id"] for i in good if i.channel == "snapshot"]
        stored_snaps = _stored_snapshots(conn, snap_ids)
        # Which station each snapshot's event came from (events of this batch are added below).
        snap_owner = _event_stations(conn, snap_ids)
        station_rows, fresh = _station_rows(conn, {i.station for i in good})
        head = conn.execute(_HEAD_READ).one()
        row_no, prev_hash = head.row_no, head.hash
        new_events: list[dict[str, Any]] = []
        new_snaps: list[dict[str, Any]] = []
        log_rows: list[dict[str, Any]] = []
        q_rows: list[dict[str, Any]] = []
        touched: set[str] = set()

        # Items are only read here: if this transaction fails, they are tried again one by one.
        for item in items:
            if item.reason is not None:
                q_rows.append(_quarantine_row(item, item.reason, item.detail))
                continue
            touched.add(item.station)
            station_rows[item.station]["site"] = item.site
            station_rows[item.station]["last_seen"] = item.received_at
            if item.channel == "event":
                row = item.row
                key = (row["station"], row["incarnation"], row["seq"])
                stored_id = by_key.get(key)
                if stored_id == row["event_id"]:
                    out.duplicates += 1
                elif stored_id is not None:
                    # Kept whole in quarantine and acked: the station must not resend it forever.
                    detail = f"seq {row['seq']} is already stored as event {stored_id}"
                    q_rows.append(_quarantine_row(item, "seq_conflict", detail))
                elif row["event_id"] in by_id:
                    detail = "event id already stored as %s seq %s" % by_id[row["event_id"]][::2]
                    q_rows.append(_quarantine_row(item, "id_conflict", detail))
                else:
                    row_no += 1
                    # The same text verify() hashes from the stored row (data parsed back).
                    digest = row_hash_text(prev_hash, item.content or content_json(row, row["data"]))
                    new_events.append({**row, "row_no": row_no, "prev_hash": prev_hash, "hash": digest})
                    prev_hash = digest
                    by_key[key] = row["event_id"]
                    by_id[row["event_id"]] = key
                    snap_owner.setdefault(row["event_id"], row["station"])
                    station_rows[item.station]["last_row_no"] = row_no
                    if row["kind"] in DOOR_KINDS:
                        station_rows[item.station]["door_row_no"] = row_no
                    out.new += 1
                out.ack(item.site, item.station, seq=row["seq"], incarnation=row["incarnation"])
            elif item.channel == "snapshot":
                event_id = item.row["event_id"]
                owner = snap_owner.get(event_id)
                if owner is not None and owner != item.station:
                    # Acked, so the sender stops; the event's own station may still send its photo.
                    q_rows.append(_quarantine_row(
                        item, "forged_origin", f"event {event_id} is from station {owner}"))
                    out.ack(item.site, item.station, snapshot=event_id)
                    continue
                if owner is None:
                    if self._hold(event_id):
                        out.held += 1  # not acked: the station sends it again
                        continue
                    q_rows.append(_quarantine_row(
                        item, "orphan_snapshot", f"no event {event_id} arrived after {SNAPSHOT_HOLDS} tries"))
                    out.ack(item.site, item.station, snapshot=event_id)
                    continue
                self._held.pop(event_id, None)
                if event_id not in stored_snaps:
                    new_snaps.append(item.row)
                    out.committed.snapshots.append(event_id)
                    stored_snaps.add(event_id)
                    out.snapshots += 1
                else:
                    out.duplicates += 1
                out.ack(item.site, item.station, snapshot=event_id)
            else:  # status or heartbeat
                if isinstance(item.model, Heartbeat):
                    out.committed.heartbeats.append(item.model)
                    reading = _clock_reading(item.model, item.received)
                    out.committed.clocks.append(reading)
                    station_rows[item.station]["clock_offset_s"] = reading.offset_s
                log = _apply_presence(station_rows[item.station], item)
                if log is not None:
                    log_rows.append(log)

        if q_rows:
            q_rows = fold_repeats(conn, q_rows)  # a refused signed event resent: counted, not copied
            out.committed.refused.extend(first_refusals(q_rows, {i.station: i.site for i in items}))
        out.quarantined = len(q_rows)
        out.committed.events.extend(new_events)
        out.committed.presence.extend(log_rows)
        if new_events:
            _insert_events(conn, new_events)
            conn.execute(_HEAD_MOVE, {"b_row_no": row_no, "b_hash": prev_hash})
            if hook and self._in_transaction is not None:
                done = self._in_transaction(conn, new_events)
                if done is not None:
                    out.committed.judged |= done.judged
                    out.after_commit.append(done.after_commit)
        if new_snaps:
            conn.execute(insert(snapshots), new_snaps)
            record_snapshots(conn, new_snaps)
        if q_rows:
            # Numbered here so each row's side-log entry names it.
            first = next_quarantine_id(conn)
            for offset, q_row in enumerate(q_rows):
                q_row["id"] = first + offset
            conn.execute(insert(quarantine), q_rows)
            record_quarantine(conn, q_rows)
        new_rows = [station_rows[st] for st in sorted(touched & fresh)]
        if new_rows:
            conn.execute(insert(stations), new_rows)
        changed = [
            {"b_station": st, **{f"v_{name}": station_rows[st][name] for name in _STATION_COLUMNS}}
            for st in sorted(touched - fresh)
        ]
        if changed:
            conn.execute(_STATION_UPDATE, changed)
        if log_rows:
            conn.execute(insert(station_log), log_rows)
        if q_rows:
            _LOG.warning(
                "quarantined %d message(s): %s", len(q_rows),
                ", ".join(sorted({f"{r['reason']} on {r['topic']}" for r in q_rows})[:10]),
            )
        return out


def _urgent(message: tuple[str, bytes, datetime]) -> bool:
    """Whether a queued message is an event of an URGENT_KINDS kind (read from its bytes; one
    written with escapes in the kind only waits for its batch like any other)."""
    topic, payload, _received = message
    return topic.endswith("/event") and _URGENT_MARK.search(payload) is not None


def _verify_items(items: list[_Item]) -> None:
    for item in items:
        try:
            item.signed.verify()  # type: ignore[union-attr]
        except ProtocolError as exc:
            item.reason, item.detail = exc.reason, exc.detail


def _insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """One executemany of new event rows, handed to the driver as they are: SQLAlchemy's
    per-row parameter processing cost more than SQLite's insert itself (bench/ingest.py), and
    the events columns are plain text and integers that need none."""
    compiled = _COMPILED_INSERTS.get(conn.dialect.name)
    if compiled is None:
        compiled = _COMPILED_INSERTS[conn.dialect.name] = _EVENTS_INSERT.compile(dialect=conn.dialect)
    if compiled._bind_processors:  # a dialect that converts values: let SQLAlchemy do it
        conn.execute(_EVENTS_INSERT, rows)
    elif compiled.positional:
        names = compiled.positiontup
        assert names is not None  # a positional compile always has it
        conn.exec_driver_sql(compiled.string, [tuple(row[n] for n in names) for row in rows])
    else:
        conn.exec_driver_sql(compiled.string, rows)


def _nul_column(row: dict[str, Any]) -> str | None:
    """The first column of an event row whose text holds a NUL character, or None."""
    for name, value in row.items():
        if type(value) is str and "\x00" in value:
            return name
    return None


def _clock_reading(hb: Heartbeat, received: datetime | None) -> ClockReading:
    received = received or now_utc()
    return ClockReading(site=hb.site, station=hb.station, synced=hb.clock_synced, received_at=received,
                        offset_s=round((hb.at - received).total_seconds(), 3))


def _snapshot_row(snap: Snapshot, received_at: str) -> dict[str, Any]:
    image = snap.image_bytes()
    return {
        "event_id": snap.event_id,
        "site": snap.site,
        "station": snap.station,
        "taken_at": utc_text(snap.taken_at),
        "content_type": snap.content_type,
        "sha256": hashlib.sha256(image).hexdigest(),
        "image": image,
        "received_at": received_at,
        "clock_unsynced": bool(snap.clock_unsynced),
    }


def _quarantine_row(item: _Item, reason: str, detail: str) -> dict[str, Any]:
    return {
        "station": item.station or None,
        "incarnation": item.incarnation,
        "seq": item.seq,
        "repeats": 0,
        "last_at": None,
        "received_at": item.received_at,
        "topic": item.topic,
        "reason": reason,
        "detail": detail[:_DETAIL_MAX],
        "size": len(item.payload),
        "payload": item.payload[:QUARANTINE_PAYLOAD_MAX],
    }


def _apply_presence(row: dict[str, Any], item: _Item) -> dict[str, Any] | None:
    """Fold a status or heartbeat into the station's row; a station_log row if the state changed."""
    model = item.model
    if isinstance(model, Status):
        state = model.state
        at = utc_text(model.at) if model.at is not None else item.received_at
    else:
        assert isinstance(model, Heartbeat)
        # A heartbeat is proof of life, whatever the retained status said.
        state, at = "online", utc_text(model.at)
        row["last_heartbeat"] = model.model_dump_json()
        row["policy_version"] = model.policy_version
    if model.kind is not None:
        row["kind"] = model.kind
    if row["state"] == state:
        return None
    row["state"], row["state_since"] = state, at
    return {"station": item.station, "site": item.site, "state": state, "at": at,
            "received_at": item.received_at}


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    values = list(values)
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start:start + _IN_CHUNK]


def _stored_events(
    conn: Connection, rows: list[dict[str, Any]]
) -> tuple[dict[tuple[str, str, int], str], dict[str, tuple[str, str, int]]]:
    """Stored events among ``rows``: by (station, incarnation, seq) -> event id, and event id ->
    (station, incarnation, seq)."""
    by_key: dict[tuple[str, str, int], str] = {}
    by_id: dict[str, tuple[str, str, int]] = {}
    seqs: dict[tuple[str, str], set[int]] = {}
    for row in rows:
        seqs.setdefault((row["station"], row["incarnation"]), set()).add(row["seq"])
    for (station, inc), numbers in seqs.items():
        top = conn.execute(_HIGH_SEQ, {"b_station": station, "b_inc": inc}).scalar() or 0
        wanted = {n for n in numbers if n <= top}
        for chunk in _chunks(sorted(wanted)):
            for seq, event_id in conn.execute(
                    _SEQS_STORED, {"b_station": station, "b_inc": inc, "b_values": chunk}):
                by_key[(station, inc, seq)] = event_id
                by_id[event_id] = (station, inc, seq)
    for chunk in _chunks({row["event_id"] for row in rows}):
        for event_id, station, inc, seq in conn.execute(_IDS_STORED, {"b_values": chunk}):
            by_id[event_id] = (station, inc, seq)
    return by_key, by_id


def _event_stations(conn: Connection, event_ids: list[str]) -> dict[str, str]:
    """Event id -> the station of the stored event, for those of ``event_ids`` that are stored."""
    found: dict[str, str] = {}
    for chunk in _chunks(set(event_ids)):
        for event_id, station, _inc, _seq in conn.execute(_IDS_STORED, {"b_values": chunk}):
            found[event_id] = station
    return found


def _stored_snapshots(conn: Connection, event_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(set(event_ids)):
        found.update(conn.execute(_SNAPS_STORED, {"b_values": chunk}).scalars())
    return found


def _station_rows(conn: Connection, names: set[str]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Current ``stations`` rows for ``names`` (blank ones for new stations) and which are new."""
    rows: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(names)):
        for row in conn.execute(_STATIONS_READ, {"b_values": chunk}).mappings():
            rows[row["station"]] = dict(row)
    fresh = names - rows.keys()
    for name in fresh:
        rows[name] = {
            "station": name, "site": "", "kind": None, "state": "unknown", "state_since": None,
            "last_seen": None, "last_heartbeat": None, "policy_version": None, "clock_offset_s": None,
            "last_row_no": None, "door_row_no": None,
        }
    return rows, fresh
