"""Reading a station's event payload into the row ingest stores, on either side of a process.

What an event costs the hub before its transaction - the strict JSON parse and schema check
(kagiban.protocol), the row with its chain text, the key lookup and the Ed25519 check - is
made by ``read_event``. The ingest writer calls it itself for a small batch; a large batch's
events are read by ``read_events`` in the verifier processes (hub/ingest/verify_workers.py),
each with an interpreter lock of its own, so neither the writer thread nor paho's network
thread waits for that work. Both sides run the same code, so a refused event gets the same
quarantine reason and detail wherever it was read.

A retired key's event comes back with that key: whether the key may still sign (its old unit's
backlog, ``KeyRing.allow_backlog``) needs the store, so the writer asks.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.stations.keys import KeyFields, StationKey, event_signature
from hub.store.chain import canonical_json, content_json
from hub.store.timestamps import utc_text
from kagiban.protocol import Event, ProtocolError, parse_station_payload

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimeBounds:
    """How far an event's time may lie from its receive time before it is flagged: ahead by more
    than ``future_s`` ("future"), behind by more than ``past_s`` ("past")."""

    future_s: float = 120.0
    past_s: float = 30 * 86400.0

    def flag(self, at: datetime, received: datetime) -> str | None:
        """"future", "past" or None for an event made at ``at`` and received at ``received``."""
        ahead = (at - received).total_seconds()
        if ahead > self.future_s:
            return "future"
        if -ahead > self.past_s:
            return "past"
        return None


@dataclass(frozen=True)
class ReadEvent:
    """One event payload read: its ``row`` (the events columns but the chain's) and ``content``
    (the row's canonical text the chain hashes), or the ``reason`` to quarantine it with.
    ``incarnation`` and ``seq`` once the payload parsed (None before); ``retired``: the retired
    key that signed it, still to be allowed by the writer."""

    reason: str | None = None
    detail: str = ""
    row: dict[str, Any] | None = None
    content: str = ""
    incarnation: str | None = None
    seq: int | None = None
    retired: KeyFields | None = None


# (site, station, payload, received, received_at as stored): one event for a reader process.
Job = tuple[str, str, bytes, datetime, str]


@dataclass(frozen=True)
class ReadJob:
    """A chunk of a batch's events for one reader process, with the keys of their stations."""

    jobs: list[Job]
    keys: dict[str, KeyFields]  # key id -> StationKey fields
    enrolled: frozenset[str]  # stations among the jobs' that have a registered key
    bounds: TimeBounds


def read_event(site: str, station: str, payload: bytes, received: datetime, received_at: str,
               find: Callable[[str], StationKey | None], enrolled: bool, bounds: TimeBounds) -> ReadEvent:
    """The event ``payload`` from ``site``/``station`` read, its signature checked (``find``:
    key id -> registered key; ``enrolled``: the station has one)."""
    model: Event | None = None
    retired: StationKey | None = None
    try:
        parsed = parse_station_payload(site, station, "event", payload)
        assert isinstance(parsed, Event)
        model = parsed
        signed, retired = event_signature(station, model, payload, find, enrolled)
        signed.verify()
        row = event_row(model, received_at)
        row["time_flag"] = bounds.flag(model.at, received)
        row.update(signed=signed.signed, signature=signed.signature, key_id=signed.key_id)
        return ReadEvent(row=row, content=content_json(row, row["data"]), incarnation=model.incarnation or "",
                         seq=model.seq, retired=retired.fields() if retired is not None else None)
    except ProtocolError as exc:
        reason, detail = exc.reason, exc.detail
    except Exception as exc:  # a message the protocol accepts but the hub cannot hold
        _LOG.warning("unexpected error reading an event from %s", station, exc_info=True)
        reason, detail = "internal_error", f"{exc.__class__.__name__}: {exc}"
    if model is None:
        return ReadEvent(reason=reason, detail=detail)
    # A retired key's refusal stays open: the writer's backlog check decides first (retired_key).
    return ReadEvent(reason=reason, detail=detail, incarnation=model.incarnation or "", seq=model.seq,
                     retired=retired.fields() if retired is not None else None)


# In a reader process: StationKey objects by their fields, so each key's bytes are decoded once.
_KEYS: dict[KeyFields, StationKey] = {}


def read_events(job: ReadJob) -> list[ReadEvent]:
    """``read_event`` for each of a chunk's events (what a reader process runs)."""
    keys: dict[str, StationKey] = {}
    for kid, fields in job.keys.items():
        key = _KEYS.get(fields)
        if key is None:
            if len(_KEYS) > 10_000:  # keys replaced over a long run: start again
                _KEYS.clear()
            key = _KEYS[fields] = StationKey(*fields)
        keys[kid] = key
    find, enrolled, bounds = keys.get, job.enrolled, job.bounds
    return [read_event(site, station, payload, received, received_at, find, station in enrolled, bounds)
            for site, station, payload, received, received_at in job.jobs]


def event_row(ev: Event, received_at: str) -> dict[str, Any]:
    """The events row of ``ev`` (without the chain's and the signature's columns)."""
    return {
        "site": ev.site,
        "station": ev.station,
        "seq": ev.seq,
        "event_id": ev.id,
        "kind": ev.kind,
        "at": ev.at.isoformat(),  # keeps the station's offset
        "at_utc": utc_text(ev.at),
        "badge": ev.badge,
        "person": ev.person,
        "data": canonical_json(ev.data),
        "received_at": received_at,
        "incarnation": ev.incarnation or "",
    }

