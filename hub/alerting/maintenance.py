"""Stations in maintenance: a supervisor puts a station in maintenance for a set time.

While a station is in maintenance its alerts are still raised, stored and entered in the
alerts log (the record stays complete), but:

- no notification is scheduled for them (e-mail, chat: hub.alerting.notify);
- the status page neither pins them nor counts them in the tab title, and the browser does
  not sound for them; they are listed apart, marked "in maintenance".

The alert says so in its params (``"maintenance": true``), so the alerts log records it too.
Each period's start (who, when, until, reason) and early end (who, when, comment) is entered
in the ``maintenance`` side log in the same transaction (hub.audit.entries), and the alert
history lists the periods (:func:`periods`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BindParameter, Connection, Engine, and_, bindparam, insert, or_, select, update

from hub.audit.entries import record_maintenance_ended, record_maintenance_started
from hub.store.db import begin_write, inserted_id
from hub.store.schema import maintenance
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

MAX_HOURS = 24 * 7  # a week: longer is a station to take out of service, not maintenance
REASON_MAX = 200
COMMENT_MAX = 200
PERIODS_SHOWN = 100


class MaintenanceError(ValueError):
    """A maintenance request the hub refuses; ``code`` is translated by the page."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Window:
    """One maintenance period of a station."""

    id: int
    station: str
    starts_at: str
    ends_at: str
    reason: str
    set_by: str
    ended_at: str | None = None  # ended early (else it ran until ends_at)
    ended_by: str | None = None
    end_comment: str | None = None


def start(engine: Engine, station: str, hours: float, reason: str, user: str,
          now: datetime | None = None) -> Window:
    """Put ``station`` in maintenance for ``hours`` from now (ending any window it is in)."""
    if not station:
        raise MaintenanceError("maintenance_station")
    if not (0 < hours <= MAX_HOURS):
        raise MaintenanceError("maintenance_hours")
    reason = reason.strip()
    if not reason or len(reason) > REASON_MAX:
        raise MaintenanceError("maintenance_reason")
    now = now or now_utc()
    row = {"station": station, "starts_at": utc_text(now), "ends_at": utc_text(now + timedelta(hours=hours)),
           "reason": reason, "set_by": user[:64]}
    with begin_write(engine) as conn:
        _end_open(conn, station, user, now, None)
        new_id = inserted_id(conn.execute(insert(maintenance).values(**row)))
        record_maintenance_started(conn, {"id": new_id, **row})
    _LOG.info("station %s in maintenance until %s (by %s)", station, row["ends_at"], user)
    return Window(id=new_id, **row)


def end(engine: Engine, station: str, user: str, comment: str | None = None, now: datetime | None = None) -> bool:
    """End ``station``'s maintenance now, with an optional comment (what was done); False if it
    was in none."""
    comment = (comment or "").strip() or None
    if comment is not None and len(comment) > COMMENT_MAX:
        raise MaintenanceError("maintenance_comment")
    now = now or now_utc()
    with begin_write(engine) as conn:
        ended = _end_open(conn, station, user, now, comment)
    if ended:
        _LOG.info("maintenance of station %s ended by %s", station, user)
    return ended > 0


def _end_open(conn: Connection, station: str, user: str, now: datetime, comment: str | None) -> int:
    """End the station's period in force at ``now`` (at most one: starting one ends the one
    before) and enter the end in the maintenance log; how many were ended."""
    text = utc_text(now)
    ids = conn.execute(_active_query(text).with_only_columns(maintenance.c.id)
                       .where(maintenance.c.station == station)).scalars().all()
    if not ids:
        return 0
    values = {"ended_at": text, "ended_by": user[:64], "end_comment": comment}
    conn.execute(update(maintenance).where(maintenance.c.id.in_(ids)).values(**values))
    record_maintenance_ended(conn, [{"id": i, "station": station, **values} for i in sorted(ids)])
    return len(ids)


def _active_query(at_text: str | BindParameter):
    """The periods in force at ``at_text`` (a time as stored, or a parameter bound later)."""
    return select(maintenance).where(maintenance.c.starts_at <= at_text, maintenance.c.ends_at > at_text,
                                     maintenance.c.ended_at.is_(None))


def _window(r) -> Window:
    return Window(id=r["id"], station=r["station"], starts_at=r["starts_at"], ends_at=r["ends_at"],
                  reason=r["reason"], set_by=r["set_by"], ended_at=r["ended_at"], ended_by=r["ended_by"],
                  end_comment=r["end_comment"])


def active(engine: Engine, now: datetime | None = None) -> dict[str, Window]:
    """Station -> its maintenance window in force at ``now``."""
    at_text = utc_text(now or now_utc())
    with engine.connect() as conn:
        rows = conn.execute(_active_query(at_text).order_by(maintenance.c.id)).mappings().all()
    return {r["station"]: _window(r) for r in rows}


def periods(engine: Engine, *, station: str | None = None, since: datetime | None = None,
            until: datetime | None = None, limit: int = PERIODS_SHOWN) -> list[Window]:
    """Maintenance periods, newest first: those of ``station`` (else every station) that
    overlap [since, until) (either end open), at most ``limit``."""
    query = select(maintenance)
    if station:
        query = query.where(maintenance.c.station == station)
    if until is not None:
        query = query.where(maintenance.c.starts_at < utc_text(until))
    if since is not None:
        text = utc_text(since)
        query = query.where(or_(and_(maintenance.c.ended_at.is_(None), maintenance.c.ends_at > text),
                                maintenance.c.ended_at > text))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(maintenance.c.starts_at.desc(), maintenance.c.id.desc())
                            .limit(limit)).mappings().all()
    return [_window(r) for r in rows]


# Built once (it runs for every alert, on the ingest writer's path for an urgent event's):
# executed with parameters, its compiled form is reused.
_IN_FORCE = (_active_query(bindparam("b_at")).with_only_columns(maintenance.c.id)
             .where(maintenance.c.station == bindparam("b_station")).limit(1))


def in_maintenance(conn: Connection, station: str, at: datetime) -> bool:
    """Whether ``station`` is in maintenance at ``at`` (inside the caller's transaction)."""
    return conn.execute(_IN_FORCE, {"b_station": station, "b_at": utc_text(at)}).first() is not None
