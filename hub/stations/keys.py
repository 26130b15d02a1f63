"""Each station's registered public keys, and the check ingest makes on every signed message.

A station's key is made on the unit (``kagiban device enroll``) and registered here with
``kagiban hub station-key add``. From then on the station must sign: an unsigned event from it
is quarantined ``unsigned``, one signed by a key not registered for it ``unknown_key``, one whose
signature does not match ``bad_signature``. A swapped or rebuilt unit gets a new key
(``add --replace`` retires the old one) and a fresh outbox incarnation; the retired key still
verifies every row it signed, and is accepted for new events only in an incarnation it already
signed at the hub (the old unit's backlog), never for a new one (``retired_key``).

Ingest keeps the keys in memory (``KeyRing``) and asks the store once per batch whether any key
was added or retired since it read them (one small query), so a change made with the CLI while
the hub runs applies from the next batch on.
"""
from __future__ import annotations

import base64
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from hub.stations import ed25519_check
from hub.audit.entries import record_key
from hub.store.db import begin_write
from hub.store.schema import events, station_keys
from hub.store.timestamps import now_utc, utc_text
from kagiban.ed25519 import PublicKey
from kagiban.event_signing import (
    SignatureError,
    create_station_key,
    load_station_key,
    snapshot_statement,
    split_event,
)
from kagiban.protocol import ID_PATTERN, Event, ProtocolError, Snapshot
from kagiban.signing import key_id, parse_public_key, public_key_b64

_LOG = logging.getLogger(__name__)


class StationKeyError(ValueError):
    """A key that cannot be added or retired; ``code`` says why (bad_key, bad_station,
    key_exists, station_has_key, no_such_key, already_retired)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StationKey:
    """One registered key."""

    station: str
    key_id: str
    public_key: str  # base64
    added_at: str
    retired_at: str | None = None
    note: str = ""

    @cached_property
    def public(self) -> PublicKey:
        """The key object (parsed once: ingest checks thousands of events with it)."""
        return parse_public_key(self.public_key)

    @cached_property
    def raw(self) -> bytes:
        """The 32 raw key bytes, what ingest's check takes (decoded once)."""
        return base64.b64decode(self.public_key)

    @property
    def active(self) -> bool:
        return self.retired_at is None

    def fields(self) -> "KeyFields":
        """The key as plain values (picklable: the cached key object is left out)."""
        return (self.station, self.key_id, self.public_key, self.added_at, self.retired_at, self.note)


# StationKey's fields in order: what a reader process is sent (StationKey(*fields) rebuilds it).
KeyFields = tuple[str, str, str, str, "str | None", str]


def load_keys(conn: Connection) -> dict[str, StationKey]:
    """Every registered key, by key id."""
    rows = conn.execute(select(station_keys).order_by(station_keys.c.id)).mappings()
    return {
        r["key_id"]: StationKey(r["station"], r["key_id"], r["public_key"], r["added_at"], r["retired_at"], r["note"])
        for r in rows
    }


def _columns(key: "StationKey") -> dict[str, Any]:
    return {"station": key.station, "key_id": key.key_id, "public_key": key.public_key,
            "added_at": key.added_at, "retired_at": key.retired_at}


def list_keys(engine: Engine, station: str | None = None) -> list[StationKey]:
    """Registered keys (of one station if given), oldest first."""
    with engine.connect() as conn:
        keys = list(load_keys(conn).values())
    return [k for k in keys if station is None or k.station == station]


def add_key(engine: Engine, station: str, public_key: str, *, replace: bool = False, note: str = "") -> tuple[StationKey, list[StationKey]]:
    """Register ``public_key`` (base64) for ``station``; returns the key and the keys it retired.

    A station has one active key: adding another needs ``replace`` (a swapped or rebuilt unit),
    which retires the active one in the same transaction.
    """
    if not re.match(ID_PATTERN, station or ""):
        raise StationKeyError("bad_station", f"{station!r} is not a station id")
    try:
        kid = key_id(public_key)
    except ValueError as exc:
        raise StationKeyError("bad_key", f"not an Ed25519 public key: {exc}") from exc
    now = utc_text(now_utc())
    with begin_write(engine) as conn:
        keys = load_keys(conn)
        if kid in keys:
            raise StationKeyError("key_exists", f"key {kid} is already registered for {keys[kid].station}")
        active = [k for k in keys.values() if k.station == station and k.active]
        if active and not replace:
            raise StationKeyError(
                "station_has_key",
                f"{station} already has the active key {active[0].key_id}; "
                "give --replace if the unit was swapped or rebuilt")
        if active:
            conn.execute(update(station_keys).where(station_keys.c.key_id.in_([k.key_id for k in active]))
                         .values(retired_at=now))
            for k in active:
                record_key(conn, "retired", {**_columns(k), "retired_at": now})
        conn.execute(insert(station_keys).values(
            station=station, key_id=kid, public_key=public_key.strip(), added_at=now, note=note))
        # The key log (covered by the checkpoints) is what tells the tooling's keys from others.
        record_key(conn, "added", {"station": station, "key_id": kid, "public_key": public_key.strip(),
                                   "added_at": now, "retired_at": None})
    _LOG.info("registered key %s for %s%s", kid, station,
              f" (retired {', '.join(k.key_id for k in active)})" if active else "")
    retired = [StationKey(k.station, k.key_id, k.public_key, k.added_at, now, k.note) for k in active]
    return StationKey(station, kid, public_key.strip(), now, None, note), retired


def retire_key(engine: Engine, kid: str) -> StationKey:
    """Retire a key (the unit is gone): it verifies its rows still, but signs no new outbox."""
    now = utc_text(now_utc())
    with begin_write(engine) as conn:
        key = load_keys(conn).get(kid)
        if key is None:
            raise StationKeyError("no_such_key", f"no registered key {kid}")
        if not key.active:
            raise StationKeyError("already_retired", f"key {kid} was retired at {key.retired_at}")
        conn.execute(update(station_keys).where(station_keys.c.key_id == kid).values(retired_at=now))
        record_key(conn, "retired", {**_columns(key), "retired_at": now})
    return StationKey(key.station, key.key_id, key.public_key, key.added_at, now, key.note)


@dataclass
class Signed:
    """The signature columns of a stored event or snapshot ("" for an unsigned one), and the
    check still to make: ingest sends a large batch's ``check_args`` to its verifier processes
    (hub/ingest/verify_workers.py) and runs ``verify()`` itself for a small one."""

    signed: str = ""
    signature: str = ""
    key_id: str = ""
    _check: tuple[bytes, str, bytes, str] | None = None  # raw key, signature, message, what

    @property
    def pending(self) -> bool:
        """True while there is a signature to check."""
        return self._check is not None

    @property
    def check_args(self) -> tuple[bytes, str, bytes, str]:
        """(raw key, signature, signed bytes, detail prefix): what a verifier process checks."""
        assert self._check is not None
        return self._check

    def verify(self) -> None:
        """ProtocolError ``bad_signature`` unless the signature matches (no-op when unsigned)."""
        if self._check is None:
            return
        public_raw, signature, message, what = self._check
        try:
            ed25519_check.check(public_raw, signature, message)
        except SignatureError as exc:
            raise ProtocolError("bad_signature", f"{what}{exc}") from exc


def event_signature(station: str, model: Event, payload: bytes, find: Callable[[str], StationKey | None],
                    enrolled: bool) -> tuple[Signed, StationKey | None]:
    """The signature columns of ``station``'s event (``find``: key id -> registered key;
    ``enrolled``: the station has a registered key), and the retired key that signed it, if
    one did (whether it may still sign this incarnation is for the caller to ask:
    ``KeyRing.allow_backlog``). ProtocolError (unsigned, unknown_key, bad_signature) if the hub
    must not store it; the signature itself is checked by the Signed's ``verify()``."""
    split = split_event(payload)
    if split is None:
        if model.sig is not None or model.key_id is not None:
            raise ProtocolError("bad_signature", "key_id and sig are not the payload's last members")
        if enrolled:
            raise ProtocolError("unsigned", f"{station} has a registered key; its events must be signed")
        return Signed(), None
    key = find(split.key_id)
    if key is None or key.station != station:
        raise ProtocolError("unknown_key", f"key {split.key_id} is not registered for {station}")
    try:
        text = split.signed.decode("utf-8")
    except UnicodeDecodeError as exc:  # the JSON parse has already refused such bytes
        raise ProtocolError("bad_signature", "signed bytes are not UTF-8") from exc
    signed = Signed(text, split.signature, split.key_id, (key.raw, split.signature, split.signed, ""))
    return signed, (None if key.active else key)


# Changes whenever a key is added (count, highest id) or retired (count of retired_at): keys
# are never deleted or un-retired by the tools. Any other edit of the table (by hand) is read
# at the next full read, every ``KeyRing.refresh_s``.
_KEYS_MARK = select(func.count(), func.max(station_keys.c.id), func.count(station_keys.c.retired_at))


@dataclass
class KeyRing:
    """The registered keys as ingest sees them, with each key's bytes decoded once.

    The ingest writer checks a batch against the keys as last read (``refresh()``), then asks,
    inside the batch's write transaction, whether any key was added or retired since
    (``moved()``): if so it reads them again (``sync()``) and checks the batch again before
    writing it. A key retired or replaced with the CLI while the hub runs is so refused from the
    very next write on, even one whose batch was checked just before. The keys are also read in
    full every ``refresh_s``, whatever the mark says.

    Used by the ingest writer thread only (its checks run outside the write transaction,
    ``moved`` inside it)."""

    engine: Engine
    refresh_s: float = 5.0
    _keys: dict[str, StationKey] = field(default_factory=dict)
    _stations: set[str] = field(default_factory=set)
    _mark: tuple | None = None  # _KEYS_MARK's row when the keys were read
    _read_at: float = float("-inf")  # time.monotonic() of that read
    # (station, incarnation, key id) a retired key may still sign: seen stored under it.
    _backlog_ok: set[tuple[str, str, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def mark(self) -> tuple | None:
        """What the store's keys looked like when they were last read (None: never read)."""
        return self._mark

    def refresh(self) -> None:
        """Read the keys if they were never read or a full read is due (``refresh_s``); no
        query otherwise: whether they changed is asked in the write transaction (``moved``)."""
        if self._mark is None or time.monotonic() - self._read_at >= self.refresh_s:
            self.sync()

    @staticmethod
    def moved(conn: Connection, mark: tuple | None) -> bool:
        """Whether a key was added or retired since the keys were read at ``mark`` (one query,
        in ``conn``: the ingest writer's transaction, which holds the store's write lock)."""
        return tuple(conn.execute(_KEYS_MARK).one()) != mark

    def sync(self) -> None:
        """Read the keys again if any was added or retired since they were read (one query)."""
        now = time.monotonic()
        with self.engine.connect() as conn:
            mark = tuple(conn.execute(_KEYS_MARK).one())
            if mark == self._mark and now - self._read_at < self.refresh_s:
                return
            keys = load_keys(conn)
        known = self._keys
        # A key unchanged keeps its object, so its decoded bytes are not decoded again.
        keys = {kid: known[kid] if known.get(kid) == key else key for kid, key in keys.items()}
        with self._lock:
            self._keys = keys
            self._stations = {k.station for k in keys.values()}
            self._mark, self._read_at = mark, now
        _LOG.debug("station keys read: %d registered", len(keys))

    @property
    def enrolled(self) -> bool:
        """Whether any station has a registered key (as last read)."""
        return bool(self._stations)

    def _loaded(self) -> None:
        if self._mark is None:
            self.sync()

    def find(self, kid: str) -> StationKey | None:
        """The registered key ``kid`` (as last read), or None."""
        self._loaded()
        return self._keys.get(kid)

    def has_key(self, station: str) -> bool:
        """Whether ``station`` has a registered key (as last read): its events must be signed."""
        self._loaded()
        return station in self._stations

    def _key(self, station: str, kid: str) -> StationKey:
        key = self._keys.get(kid)
        if key is None or key.station != station:
            raise ProtocolError("unknown_key", f"key {kid} is not registered for {station}")
        return key

    def table(self, names: set[str]) -> tuple[dict[str, KeyFields], frozenset[str]]:
        """The keys of the stations ``names`` as plain fields (what a reader process is sent,
        hub/ingest/reading.py), and which of them are enrolled."""
        self._loaded()
        keys = self._keys
        return ({kid: key.fields() for kid, key in keys.items() if key.station in names},
                frozenset(names & self._stations))

    def check_snapshot(self, station: str, model: Snapshot, sha256: str) -> Signed:
        """The signature columns of a snapshot whose image hashes to ``sha256``."""
        self._loaded()
        if model.sig is None or model.key_id is None:
            if station in self._stations:
                raise ProtocolError("unsigned", f"{station} has a registered key; its snapshots must be signed")
            return Signed()
        key = self._key(station, model.key_id)
        # A retired key's snapshot belongs to an event it signed; the event check guards that.
        statement = snapshot_statement(model.event_id, station, sha256)
        return Signed("", model.sig, model.key_id, (key.raw, model.sig, statement, "snapshot: "))

    def allow_backlog(self, station: str, incarnation: str, key: StationKey) -> None:
        """ProtocolError ``retired_key`` unless the retired ``key`` already signed an event stored
        in this incarnation (the old unit's backlog)."""
        marker = (station, incarnation, key.key_id)
        if marker in self._backlog_ok:
            return
        with self.engine.connect() as conn:
            found = conn.execute(select(events.c.row_no).where(
                events.c.station == station, events.c.incarnation == incarnation,
                events.c.key_id == key.key_id).limit(1)).first()
        if found is None:
            raise ProtocolError(
                "retired_key", f"key {key.key_id} of {station} was retired at {key.retired_at}; "
                f"it signed nothing stored in incarnation {incarnation or '(none)'}")
        self._backlog_ok.add(marker)


def enroll_local_unit(engine: Engine, station: str, key_path: str | os.PathLike) -> StationKey:
    """Both halves of enrollment for a unit on this machine (the demo and test stacks): the
    unit's key at ``key_path`` (made if missing) registered for ``station``, replacing an
    active key that differs. A real unit makes its key itself (``kagiban device enroll``)."""
    path = Path(key_path)
    key = load_station_key(path) if path.exists() else create_station_key(path)
    public = public_key_b64(key)
    for known in list_keys(engine, station):
        if known.public_key == public:
            return known
    added, _ = add_key(engine, station, public, replace=True, note="enrolled on this machine")
    return added
