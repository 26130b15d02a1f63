"""Near-miss cases in the store: filing (from the form, an alert or an event, an import),
review (a countermeasure) and sharing, reading them, their evidence, and the analysis counts.
Each step is one write transaction with its side-log entry (hub.nearmiss.trail).

States go one way: ``filed`` -> ``reviewed`` (a supervisor writes the countermeasure; it may be
rewritten until shared) -> ``shared`` (listed for all staff, sent in the month's digest).

Evidence: a case turned from an alert links the alert, its event and the events of that station
from ``EVIDENCE_BEFORE`` before it to ``EVIDENCE_AFTER`` after it (at most ``EVIDENCE_MAX``); a
case from an event links that event. The events' snapshots are the photos.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, select, update

from hub.config import HubConfig
from hub.ledgers.base import day_bounds
from hub.nearmiss import trail
from hub.nearmiss.model import Case, CaseInput, NearMissError
from hub.store.db import begin_write, inserted_id
from hub.store.schema import (
    NEARMISS_CATEGORIES,
    NEARMISS_SEVERITIES,
    alerts,
    events,
    nearmiss_cases,
    snapshots,
    stations,
)
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

EVIDENCE_BEFORE = timedelta(minutes=5)
EVIDENCE_AFTER = timedelta(minutes=1)
EVIDENCE_MAX = 20
CLOCK_SLACK = timedelta(minutes=5)  # a reporter's "now" may run ahead of the hub's a little
LIST_MAX = 500
# The category a draft from a station of this kind starts with (the reporter may change it).
KIND_CATEGORY = {"cabinet": "keys", "shredder": "shredder", "printer": "printer"}


def _known_station(conn: Connection, cfg: HubConfig, station: str) -> bool:
    listed = cfg.known_stations()
    if listed is not None and station in listed:
        return True
    return conn.execute(select(stations.c.station).where(stations.c.station == station)).first() is not None


def _instant(text: str | None) -> datetime | None:
    """A stored UTC text as an instant a draft can use (None for a value that is none, or one
    too near the ends of time to add minutes to)."""
    try:
        when = datetime.fromisoformat((text or "").replace("Z", "+00:00"))
        when + EVIDENCE_BEFORE, when - EVIDENCE_BEFORE  # noqa: B018 - raises at the ends of time
    except (ValueError, OverflowError):
        return None
    return when if when.tzinfo is not None else None


def _evidence_ids(conn: Connection, station: str, at: str, first: str | None) -> list[str]:
    when = _instant(at)
    if when is None:
        return [first] if first else []
    rows = conn.execute(
        select(events.c.event_id).where(
            events.c.station == station,
            events.c.at_utc >= utc_text(when - EVIDENCE_BEFORE), events.c.at_utc <= utc_text(when + EVIDENCE_AFTER))
        .order_by(events.c.at_utc, events.c.row_no).limit(EVIDENCE_MAX)).scalars().all()
    ids = [first] if first else []
    return ids + [i for i in rows if i != first][:EVIDENCE_MAX - len(ids)]


@dataclass(frozen=True)
class Draft:
    """A case prefilled from an alert or an event, for the reporter to complete."""

    station: str
    occurred_at: datetime
    category: str
    what: str
    alert_id: int | None
    event_ids: tuple[str, ...]


def _kind(conn: Connection, cfg: HubConfig, station: str) -> str | None:
    entry = cfg.station(station)
    if entry is not None and entry.kind:
        return entry.kind
    return conn.execute(select(stations.c.kind).where(stations.c.station == station)).scalar()


def alert_draft(engine: Engine, cfg: HubConfig, alert_id: int) -> Draft:
    """The draft of a case from alert ``alert_id`` (NearMissError if there is none)."""
    with engine.connect() as conn:
        row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().first()
        if row is None:
            raise NearMissError("nearmiss.alert_not_found", {"id": alert_id})
        ids = _evidence_ids(conn, row["station"], row["raised_at"], row["event_id"])
        kind = _kind(conn, cfg, row["station"])
    return Draft(station=row["station"], occurred_at=_instant(row["raised_at"]) or now_utc(),
                 category=KIND_CATEGORY.get(kind or "", "other"), what=row["message"], alert_id=alert_id,
                 event_ids=tuple(ids))


def event_draft(engine: Engine, cfg: HubConfig, event_id: str) -> Draft:
    """The draft of a case from a stored event (NearMissError if there is none)."""
    with engine.connect() as conn:
        row = conn.execute(select(events.c.station, events.c.kind, events.c.at_utc)
                           .where(events.c.event_id == event_id)).mappings().first()
        if row is None:
            raise NearMissError("nearmiss.not_found", {"id": event_id})
        kind = _kind(conn, cfg, row["station"])
    return Draft(station=row["station"], occurred_at=_instant(row["at_utc"]) or now_utc(),
                 category=KIND_CATEGORY.get(kind or "", "other"), what=row["kind"], alert_id=None,
                 event_ids=(event_id,))


def file_case(engine: Engine, cfg: HubConfig, case: CaseInput, reporter: str, *, filed_by: str | None = None,
              source: str = "form", alert_id: int | None = None, event_id: str | None = None,
              now: datetime | None = None) -> int:
    """Store a new case; its id. ``alert_id`` or ``event_id``: the evidence is linked from the
    store (never from what the browser sent). NearMissError for bad input; nothing is stored then."""
    case.check()
    now = now or now_utc()
    if case.occurred_at > now + CLOCK_SLACK:
        raise NearMissError("nearmiss.future", {"value": case.occurred_at.isoformat(timespec="minutes")})
    event_ids: list[str] = []
    with begin_write(engine) as conn:
        if case.station and not _known_station(conn, cfg, case.station):
            raise NearMissError("nearmiss.unknown_station", {"value": case.station})
        if alert_id is not None:
            row = conn.execute(select(alerts.c.station, alerts.c.raised_at, alerts.c.event_id)
                               .where(alerts.c.id == alert_id)).first()
            if row is None:
                raise NearMissError("nearmiss.alert_not_found", {"id": alert_id})
            event_ids = _evidence_ids(conn, row.station, row.raised_at, row.event_id)
            source = "alert"
        elif event_id is not None:
            if conn.execute(select(events.c.row_no).where(events.c.event_id == event_id)).first() is None:
                raise NearMissError("nearmiss.not_found", {"id": event_id})
            event_ids = [event_id]
            source = "event"
        values = {
            "occurred_at": utc_text(case.occurred_at), "station": case.station or None,
            "place": case.place.strip(), "category": case.category, "what": case.what.strip(),
            "why": case.why.strip(), "severity": case.severity, "anonymous": case.anonymous,
            "reporter": reporter[:64], "filed_by": (filed_by or reporter)[:64], "filed_at": utc_text(now),
            "source": source, "alert_id": alert_id, "event_ids": json.dumps(event_ids), "state": "filed",
        }
        case_id = inserted_id(conn.execute(insert(nearmiss_cases).values(**values)))
        trail.record_filed(conn, case_id, values)
    _LOG.info("near-miss case %d filed by %s (%s, %s, from %s)", case_id, values["filed_by"], case.category,
              case.severity, source)
    return case_id


def _step(engine: Engine, case_id: int, allowed: tuple[str, ...], values: dict[str, Any], record) -> None:
    with begin_write(engine) as conn:
        state = conn.execute(select(nearmiss_cases.c.state).where(nearmiss_cases.c.id == case_id)).scalar()
        if state is None:
            raise NearMissError("nearmiss.not_found", {"id": case_id})
        if state not in allowed:
            raise NearMissError("nearmiss.wrong_state", {"id": case_id, "state": state})
        conn.execute(update(nearmiss_cases).where(nearmiss_cases.c.id == case_id).values(**values))
        record(conn, case_id, values)


def review(engine: Engine, case_id: int, countermeasure: str, by: str, *, now: datetime | None = None) -> None:
    """Write (or rewrite, until shared) the countermeasure of a case; it is then reviewed."""
    text = countermeasure.strip()
    if not text:
        raise NearMissError("nearmiss.missing", {"field": "countermeasure"})
    if len(text) > 4000:
        raise NearMissError("nearmiss.too_long", {"field": "countermeasure", "n": 4000})
    values = {"countermeasure": text, "reviewed_by": by[:64], "reviewed_at": utc_text(now or now_utc()),
              "state": "reviewed"}
    _step(engine, case_id, ("filed", "reviewed"), values, trail.record_reviewed)
    _LOG.info("near-miss case %d reviewed by %s", case_id, by)


def share(engine: Engine, case_id: int, by: str, *, now: datetime | None = None) -> None:
    """Share a reviewed case with all staff (and the month's digest)."""
    values = {"shared_by": by[:64], "shared_at": utc_text(now or now_utc()), "state": "shared"}
    _step(engine, case_id, ("reviewed",), values, trail.record_shared)
    _LOG.info("near-miss case %d shared by %s", case_id, by)


def get_case(engine: Engine, case_id: int) -> Case:
    """A case by id (NearMissError if there is none)."""
    with engine.connect() as conn:
        row = conn.execute(select(nearmiss_cases).where(nearmiss_cases.c.id == case_id)).mappings().first()
    if row is None:
        raise NearMissError("nearmiss.not_found", {"id": case_id})
    return Case.from_row(row)


def list_cases(engine: Engine, *, state: str | None = None, filed_by: str | None = None,
               shared_since: str | None = None, shared_before: str | None = None) -> list[Case]:
    """Cases newest first (at most LIST_MAX): of a state, of one filer, or shared in a range."""
    conds = []
    if state is not None:
        conds.append(nearmiss_cases.c.state == state)
    if filed_by is not None:
        conds.append(nearmiss_cases.c.filed_by == filed_by)
    if shared_since is not None:
        conds.append(nearmiss_cases.c.shared_at >= shared_since)
    if shared_before is not None:
        conds.append(nearmiss_cases.c.shared_at < shared_before)
    query = select(nearmiss_cases).order_by(nearmiss_cases.c.occurred_at.desc(), nearmiss_cases.c.id.desc())
    if conds:
        query = query.where(and_(*conds))
    with engine.connect() as conn:
        return [Case.from_row(r) for r in conn.execute(query.limit(LIST_MAX)).mappings()]


def evidence(engine: Engine, case: Case) -> list[dict[str, Any]]:
    """The linked events (station, kind, time, person, whether a photo is stored), in link order."""
    if not case.event_ids:
        return []
    with engine.connect() as conn:
        rows = {r["event_id"]: dict(r) for r in conn.execute(
            select(events.c.event_id, events.c.station, events.c.kind, events.c.at, events.c.person)
            .where(events.c.event_id.in_(case.event_ids))).mappings()}
        photos = set(conn.execute(select(snapshots.c.event_id)
                                  .where(snapshots.c.event_id.in_(case.event_ids))).scalars())
    return [{**rows[i], "has_snapshot": i in photos} for i in case.event_ids if i in rows]


# --- analysis ---

@dataclass(frozen=True)
class Analysis:
    """Counts of cases that occurred in a range of months (local time of the hub)."""

    total: int
    by_category: tuple[tuple[str, int], ...]  # every category, in the catalogue's order
    by_place: tuple[tuple[str, int], ...]  # station id or place, most first
    by_month: tuple[tuple[str, int], ...]  # YYYY-MM, every month of the range
    by_severity: tuple[tuple[str, int], ...]


def _months(first: date, last: date) -> list[str]:
    out: list[str] = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month) and len(out) < 240:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def analysis(engine: Engine, zone: tzinfo, first: date, last: date, *, shared_only: bool = False,
             stations: Collection[str] | None = None) -> Analysis:
    """Counts by category, place, month and severity of cases that occurred from the month of
    ``first`` through the month of ``last`` (the hub's zone); with ``stations``, only the cases
    at those stations and those at no station (a place written out names no site)."""
    months = _months(first, last)
    lo = utc_text(day_bounds(first.replace(day=1), zone)[0])
    y, m = int(months[-1][:4]), int(months[-1][5:])
    hi = utc_text(day_bounds(date(y + (m == 12), m % 12 + 1, 1), zone)[0])
    query = select(nearmiss_cases.c.occurred_at, nearmiss_cases.c.category, nearmiss_cases.c.station,
                   nearmiss_cases.c.place, nearmiss_cases.c.severity).where(
        nearmiss_cases.c.occurred_at >= lo, nearmiss_cases.c.occurred_at < hi)
    if shared_only:
        query = query.where(nearmiss_cases.c.state == "shared")
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    if stations is not None:
        rows = [r for r in rows if r.station is None or r.station in stations]
    cat: Counter[str] = Counter()
    place: Counter[str] = Counter()
    month: Counter[str] = Counter()
    sev: Counter[str] = Counter()
    for r in rows:
        cat[r.category] += 1
        sev[r.severity] += 1
        place[r.station or r.place] += 1
        try:
            local = datetime.fromisoformat(r.occurred_at.replace("Z", "+00:00")).astimezone(zone)
        except (ValueError, OverflowError):  # a hand-edited row: counted, in no month
            continue
        month[f"{local.year:04d}-{local.month:02d}"] += 1
    return Analysis(
        total=len(rows),
        by_category=tuple((c, cat[c]) for c in NEARMISS_CATEGORIES),
        by_place=tuple(sorted(place.items(), key=lambda kv: (-kv[1], kv[0]))),
        by_month=tuple((mo, month[mo]) for mo in months),
        by_severity=tuple((s, sev[s]) for s in NEARMISS_SEVERITIES),
    )


def count_at_site(engine: Engine, cfg: HubConfig, site: str, lo: str, hi: str) -> int:
    """Cases that occurred from ``lo`` to before ``hi`` (UTC text) at a station of ``site``, or
    at a place with no station (the office's own), for the monthly self-inspection report."""
    with engine.connect() as conn:
        reported = {r.station: r.site for r in conn.execute(select(stations.c.station, stations.c.site))}
        rows = conn.execute(select(nearmiss_cases.c.station).where(
            nearmiss_cases.c.occurred_at >= lo, nearmiss_cases.c.occurred_at < hi)).scalars().all()
    sites = {**reported, **(cfg.known_stations() or {})}
    return sum(1 for station in rows if station is None or sites.get(station) == site)
