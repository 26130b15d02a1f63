"""What the pages and the API read from the store: stations with their live state, events one
page at a time, snapshots. No Flask here.

Events are listed newest first in chain order (``row_no``, the order verify walks) with a
keyset cursor: ``before`` is the row_no of the last row shown. On a million rows every page
is read through an index:

- no filter: the primary key backwards;
- a day: the (station|person|kind, at_utc) index for that day's range, or, with no other
  filter, the (kind, at_utc) index once per kind (a handful), then a sort of that day only;
- station/person/kind without a day: first the newest ``WINDOW`` rows by primary key (a
  common value fills a page there at once), else that value's own index (a rare value has
  few rows to sort).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone, tzinfo
from typing import Any

from sqlalchemy import Engine, and_, select, text

from hub.config import HubConfig
from hub.ledgers.base import day_bounds
from hub.alerting.rules import POLICY_STALE_S
from hub.store.schema import events, policies, snapshots, stations
from hub.stations.state import LOCK_EVENTS, door_state, has_door, last_heartbeat, lock_after, lock_state, parse_time
from hub.store.timestamps import now_utc, utc_text
from hub.stations.directory import display_name

_LOG = logging.getLogger(__name__)

WINDOW = 20_000
PAGE_MAX = 500
_EVENT_COLUMNS = (events.c.row_no, events.c.site, events.c.station, events.c.seq, events.c.event_id,
                  events.c.kind, events.c.at, events.c.at_utc, events.c.badge, events.c.person,
                  events.c.data, events.c.received_at, events.c.time_flag)
# Distinct kinds by hopping through the (kind, at_utc) index: a few lookups, not a scan.
_KINDS_SQL = text(
    "WITH RECURSIVE k(kind) AS ("
    " SELECT min(kind) FROM events"
    " UNION ALL SELECT (SELECT min(kind) FROM events WHERE kind > k.kind) FROM k WHERE k.kind IS NOT NULL)"
    " SELECT kind FROM k WHERE kind IS NOT NULL"
)


@dataclass(frozen=True)
class EventFilter:
    """What the events page and API were asked for."""

    station: str | None = None
    person: str | None = None
    kind: str | None = None
    day: date | None = None
    # The sites the reader sees (hub.web.scope); None: every site.
    sites: frozenset[str] | None = None

    @property
    def empty(self) -> bool:
        return not (self.station or self.person or self.kind or self.day)


def station_sites(engine: Engine, cfg: HubConfig) -> dict[str, str]:
    """Every known station id -> its site (the store's list and the configured one)."""
    with engine.connect() as conn:
        out = {r.station: r.site for r in conn.execute(select(stations.c.station, stations.c.site))}
    for entry in cfg.stations or []:
        out[entry.id] = entry.site
    return dict(sorted(out.items()))


def zone_for(cfg: HubConfig, sites: dict[str, str], station: str | None = None) -> tzinfo:
    """The zone a day is taken in: the station's site's, or the one site's, else the hub's."""
    if station and station in sites:
        return cfg.site_zone(sites[station])
    distinct = set(sites.values())
    if len(distinct) == 1:
        return cfg.site_zone(distinct.pop())
    return cfg.zone()


def policy_state(reported: int | None, heard: bool, latest: int | None, published_at: datetime | None,
                 now: datetime, grace_s: float = POLICY_STALE_S) -> str:
    """How a station's policy compares with the hub's latest: ``none`` (the hub published none
    for it), ``unknown`` (no heartbeat yet), ``current``, ``pending`` (older, but the latest
    was published less than ``grace_s`` ago: it is on its way) or ``stale`` (older for longer:
    the station is not taking policies, and e.g. a revoked badge may still open it)."""
    if latest is None:
        return "none"
    if not heard:
        return "unknown"
    if reported is not None and reported >= latest:
        return "current"
    if published_at is not None and (now - published_at).total_seconds() < grace_s:
        return "pending"
    return "stale"


def station_overview(engine: Engine, cfg: HubConfig) -> list[dict[str, Any]]:
    """Each station: online state, door state, last event, policy version (as reported and
    as last published, with :func:`policy_state`), by station id."""
    now = now_utc()
    with engine.connect() as conn:
        rows = {r["station"]: dict(r) for r in conn.execute(select(stations)).mappings()}
        published = {r.station: (r.version, parse_time(r.published_at)) for r in conn.execute(
            select(policies.c.station, policies.c.version, policies.c.published_at))}
        for entry in cfg.stations or []:
            rows.setdefault(entry.id, {
                "station": entry.id, "site": entry.site, "kind": entry.kind, "state": "unknown",
                "state_since": None, "last_seen": None, "last_heartbeat": None, "policy_version": None,
                "clock_offset_s": None, "last_row_no": None, "door_row_no": None,
            })
        out = []
        # A station's latest event is the last to arrive (stations.last_row_no), never the
        # latest by the time its clock wrote: one far-future event must not stick there.
        wanted = {r.get(name) for r in rows.values() for name in ("last_row_no", "door_row_no")} - {None}
        by_row = {r["row_no"]: dict(r) for r in conn.execute(
            select(events.c.kind, events.c.at, events.c.at_utc, events.c.person, events.c.row_no,
                   events.c.time_flag).where(events.c.row_no.in_(sorted(wanted)))).mappings()} if wanted else {}
        for station_id in sorted(rows):
            row = rows[station_id]
            last = by_row.get(row.get("last_row_no"))
            door_ev = by_row.get(row.get("door_row_no"))
            item = _overview(cfg, row, last, door_ev)
            latest, published_at = published.get(station_id, (None, None))
            item.update(policy_latest=latest, policy_published_at=published_at,
                        policy_state=policy_state(item["policy_version"], bool(row.get("last_heartbeat")),
                                                  latest, published_at, now))
            out.append(item)
    return out


def station_policy(engine: Engine, station: str, reported: int | None) -> dict[str, Any]:
    """The latest published version of a station's policy and :func:`policy_state` for a
    version it just reported (for the live page, at each heartbeat)."""
    with engine.connect() as conn:
        row = conn.execute(select(policies.c.version, policies.c.published_at)
                           .where(policies.c.station == station)).first()
    latest, published_at = (row.version, parse_time(row.published_at)) if row is not None else (None, None)
    return {"policy_latest": latest,
            "policy_state": policy_state(reported, True, latest, published_at, now_utc())}


# Policy versions are unix milliseconds of their issue time (hub.registry.policy: a change
# gets max(stored + 1, now in ms)); smaller ones come from tests or hand-made stores.
_VERSION_MS_MIN = 10**12  # 2001-09-09
_VERSION_MS_MAX = 10**14  # year 5138


def policy_issued_at(version: Any) -> datetime | None:
    """When the policy ``version`` was issued (its version is that instant in unix ms), or None
    for a version that is no such instant."""
    if isinstance(version, bool) or not isinstance(version, int):
        return None
    if not _VERSION_MS_MIN <= version < _VERSION_MS_MAX:
        return None
    return datetime.fromtimestamp(version / 1000, tz=timezone.utc)


# The order peripherals are shown in (kagiban.protocol.Peripheral).
PERIPHERAL_ORDER = ("pins", "reader", "camera", "print_server")


def peripherals_of(heartbeat: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Each peripheral's health from a heartbeat (stored JSON or live), in PERIPHERAL_ORDER:
    name, state (ok / failed / absent), error code, detail, since; None if the station does
    not report them (older stations)."""
    raw = heartbeat.get("peripherals")
    if not isinstance(raw, dict):
        return None
    out = []
    for name in PERIPHERAL_ORDER:
        h = raw.get(name)
        if isinstance(h, dict):
            out.append({"name": name, "state": h.get("state") or "failed", "error": h.get("error"),
                        "detail": h.get("detail"), "since": parse_time(h.get("since"))})
    return out


def _lock(kind: str | None, heartbeat: dict[str, Any], hb_at: datetime | None, last: dict | None,
          door: str) -> str | None:
    """The lock as the heartbeat reported it, unless the station's last event, newer, moved it
    (a five-second unlock falls between two heartbeats)."""
    reported = lock_state(kind, heartbeat)
    if reported is None or last is None:
        return reported
    last_at = parse_time(last.get("at_utc"))
    if last_at is None or (hb_at is not None and last_at < hb_at):
        return reported
    return lock_after(kind, last["kind"], door) or reported


def lock_now(engine: Engine, cfg: HubConfig, station: str, event_kind: str) -> str | None:
    """The lock of ``station`` right after an event of ``event_kind`` was stored (for the live
    page); None if that event says nothing of the lock or the station has none."""
    if event_kind not in LOCK_EVENTS:
        return None  # most events: no query
    with engine.connect() as conn:
        row = conn.execute(select(stations.c.kind, stations.c.last_heartbeat, stations.c.door_row_no)
                           .where(stations.c.station == station)).mappings().first()
        door_row = conn.execute(select(events.c.kind, events.c.at_utc).where(
            events.c.row_no == row["door_row_no"])).mappings().first() \
            if row is not None and row["door_row_no"] is not None else None
    door_ev = dict(door_row) if door_row is not None else None
    entry = cfg.station(station)
    kind = (row["kind"] if row is not None else None) or (entry.kind if entry else None)
    heartbeat = last_heartbeat(row["last_heartbeat"] if row is not None else None)
    if lock_state(kind, heartbeat) is None:
        return None  # a door without a lock relay, a shredder, a printer
    door, _since = door_state(heartbeat, door_ev)
    return lock_after(kind, event_kind, door)


def _overview(cfg: HubConfig, row: dict[str, Any], last: dict | None, door_ev: dict | None) -> dict[str, Any]:
    heartbeat = last_heartbeat(row.get("last_heartbeat"))
    hb_at = parse_time(heartbeat.get("at"))
    door, door_at = door_state(heartbeat, door_ev)
    station_id = row["station"]
    entry = cfg.station(station_id)
    kind = row["kind"] or (entry.kind if entry else None)
    return {
        "station": station_id,
        "name": display_name(cfg, station_id),
        "site": row["site"] or (entry.site if entry else ""),
        "kind": kind,
        "state": row["state"],
        "state_since": parse_time(row.get("state_since")),
        "heartbeat_at": hb_at,
        "has_door": has_door(kind),
        "door": door,
        "door_at": door_at,
        "lock": _lock(kind, heartbeat, hb_at, last, door),
        "policy_version": row.get("policy_version"),
        "policy_issued_at": policy_issued_at(row.get("policy_version")),
        # Revision 6 heartbeat fields: the policy in force is expired; why the last one offered
        # was refused (a reason code, e.g. version_ahead).
        "policy_expired": heartbeat.get("policy_expired") is True,
        "policy_refused": heartbeat.get("policy_refused") if isinstance(heartbeat.get("policy_refused"), str) else None,
        "outbox_depth": heartbeat.get("outbox_depth"),
        "peripherals": peripherals_of(heartbeat),
        "last_kind": last["kind"] if last else None,
        "last_at": parse_time(last["at"]) if last else None,
        "last_person": last["person"] if last else None,
        "last_time_flag": last.get("time_flag") if last else None,
        **clock_of(cfg, row.get("clock_offset_s"), heartbeat),
    }


def clock_of(cfg: HubConfig, offset_s: Any, heartbeat: dict[str, Any]) -> dict[str, Any]:
    """A station's clock as its last heartbeat showed it: ``clock_offset_s`` (station time minus
    receive time), ``clock_synced`` (True, False or None: not reported) and ``clock_state``:
    ``unknown`` (not measured), ``unsynced``, ``skewed`` (past ``rules.clock_skew_s``) or ``ok``;
    ``clock_label``: the same, with ``synced`` for an ``ok`` clock the station says a time
    service keeps right."""
    offset = float(offset_s) if isinstance(offset_s, (int, float)) and math.isfinite(offset_s) else None
    synced = heartbeat.get("clock_synced")
    synced = synced if isinstance(synced, bool) else None
    if offset is None:
        state = "unknown"
    elif synced is False:
        state = "unsynced"
    elif abs(offset) > cfg.rules.clock_skew_s:
        state = "skewed"
    else:
        state = "ok"
    label = "synced" if state == "ok" and synced is True else state
    return {"clock_offset_s": offset, "clock_synced": synced, "clock_state": state, "clock_label": label}


def event_kinds(engine: Engine) -> list[str]:
    """The kinds of event stored so far, sorted."""
    with engine.connect() as conn:
        return [k for (k,) in conn.execute(_KINDS_SQL)]


def list_events(
    engine: Engine,
    cfg: HubConfig,
    flt: EventFilter,
    *,
    before: int | None = None,
    limit: int = 50,
    zone: tzinfo | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of events, newest first, and the ``before`` cursor of the next page (or None)."""
    limit = max(1, min(limit, PAGE_MAX))
    conds = []
    if before is not None:
        conds.append(events.c.row_no < before)
    if flt.day is not None:
        lo, hi = day_bounds(flt.day, zone or cfg.zone())
        conds += [events.c.at_utc >= utc_text(lo), events.c.at_utc < utc_text(hi)]
    if flt.sites is not None:
        conds.append(events.c.site.in_(sorted(flt.sites)))
    filters = [(events.c.station, flt.station), (events.c.person, flt.person), (events.c.kind, flt.kind)]
    filters = [(col, value) for col, value in filters if value]
    with engine.connect() as conn:
        if not filters and flt.day is not None:
            # The day through the (kind, at_utc) index: one range per kind.
            kinds = [k for (k,) in conn.execute(_KINDS_SQL)]
            conds.append(events.c.kind.in_(kinds))
        if filters and flt.day is None:
            rows = _windowed(conn, conds, filters, before, limit)
        else:
            rows = None
        if rows is None:
            clauses = [*conds, *(c == v for c, v in filters)]
            query = select(*_EVENT_COLUMNS).order_by(events.c.row_no.desc()).limit(limit + 1)
            if clauses:
                query = query.where(and_(*clauses))
            rows = [dict(r) for r in conn.execute(query).mappings()]
        more = len(rows) > limit
        rows = rows[:limit]
        with_snap = _snapshot_ids(conn, [r["event_id"] for r in rows])
    for row in rows:
        row["has_snapshot"] = row["event_id"] in with_snap
    return rows, (rows[-1]["row_no"] if more and rows else None)


def _windowed(conn, conds, filters, before: int | None, limit: int) -> list[dict[str, Any]] | None:
    """The page from the newest WINDOW rows by primary key, or None if it holds too few."""
    top = before
    if top is None:
        top = (conn.execute(select(events.c.row_no).order_by(events.c.row_no.desc()).limit(1)).scalar() or 0) + 1
    # ``col || ''`` keeps the planner on the primary-key range instead of the column's index.
    query = (select(*_EVENT_COLUMNS)
             .where(and_(*conds, events.c.row_no >= top - WINDOW,
                         *(col.concat("") == value for col, value in filters)))
             .order_by(events.c.row_no.desc()).limit(limit + 1))
    rows = [dict(r) for r in conn.execute(query).mappings()]
    if len(rows) > limit or top - WINDOW <= 1:
        # A full page, or the window already reached the first row: nothing more to find.
        return rows
    return None


def _snapshot_ids(conn, event_ids: Iterable[str]) -> set[str]:
    ids = list(event_ids)
    if not ids:
        return set()
    return set(conn.execute(select(snapshots.c.event_id).where(snapshots.c.event_id.in_(ids))).scalars())


def events_after(engine: Engine, row_no: int, limit: int = 200,
                 sites: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Events stored after ``row_no`` in chain order (what a live page missed while connecting),
    of ``sites`` only if given."""
    conds = [events.c.row_no > row_no]
    if sites is not None:
        conds.append(events.c.site.in_(sorted(sites)))
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            select(*_EVENT_COLUMNS).where(*conds)
            .order_by(events.c.row_no.desc()).limit(limit)).mappings()]
        with_snap = _snapshot_ids(conn, [r["event_id"] for r in rows])
    for row in rows:
        row["has_snapshot"] = row["event_id"] in with_snap
    rows.reverse()
    return rows


def get_event(engine: Engine, event_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(*_EVENT_COLUMNS).where(events.c.event_id == event_id)).mappings().first()
        if row is None:
            return None
        out = dict(row)
        out["has_snapshot"] = bool(_snapshot_ids(conn, [event_id]))
    return out


def snapshot_image(engine: Engine, event_id: str) -> tuple[bytes, str, str] | None:
    """A stored snapshot's bytes, content type and site, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(snapshots.c.image, snapshots.c.content_type, snapshots.c.site)
                           .where(snapshots.c.event_id == event_id)).first()
    return (bytes(row.image), row.content_type, row.site) if row is not None else None


def latest_row_no(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(events.c.row_no).order_by(events.c.row_no.desc()).limit(1)).scalar() or 0
