"""Stations in maintenance: a supervisor puts a station in maintenance for a set time.

While a station is in maintenance its alerts are still raised, stored and entered in the
alerts log (the record stays complete), but:

- no notification is scheduled for them (e-mail, chat: hub.alerting.notify);
- the status page neither pins them nor counts them in the tab title, and the browser does
  not sound for them; they are listed apart, marked "in maintenance".

The alert says so in its params (``"maintenance": true``), so the alerts log records it too.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, insert, select, update

from hub.store.db import begin_write, inserted_id
from hub.store.schema import maintenance
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

MAX_HOURS = 24 * 7  # a week: longer is a station to take out of service, not maintenance
REASON_MAX = 200


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
        _end_open(conn, station, user, now)
        new_id = inserted_id(conn.execute(insert(maintenance).values(**row)))
    _LOG.info("station %s in maintenance until %s (by %s)", station, row["ends_at"], user)
    return Window(id=new_id, **row)


def end(engine: Engine, station: str, user: str, now: datetime | None = None) -> bool:
    """End ``station``'s maintenance now; False if it was in none."""
    now = now or now_utc()
    with begin_write(engine) as conn:
        ended = _end_open(conn, station, user, now)
    if ended:
        _LOG.info("maintenance of station %s ended by %s", station, user)
    return ended > 0


def _end_open(conn: Connection, station: str, user: str, now: datetime) -> int:
    text = utc_text(now)
    return conn.execute(update(maintenance).where(
        maintenance.c.station == station, maintenance.c.ended_at.is_(None), maintenance.c.ends_at > text,
        maintenance.c.starts_at <= text).values(ended_at=text, ended_by=user[:64])).rowcount


def _active_query(at_text: str):
    return select(maintenance).where(maintenance.c.starts_at <= at_text, maintenance.c.ends_at > at_text,
                                     maintenance.c.ended_at.is_(None))


def active(engine: Engine, now: datetime | None = None) -> dict[str, Window]:
    """Station -> its maintenance window in force at ``now``."""
    at_text = utc_text(now or now_utc())
    with engine.connect() as conn:
        rows = conn.execute(_active_query(at_text).order_by(maintenance.c.id)).mappings().all()
    return {r["station"]: Window(id=r["id"], station=r["station"], starts_at=r["starts_at"], ends_at=r["ends_at"],
                                 reason=r["reason"], set_by=r["set_by"]) for r in rows}


def in_maintenance(conn: Connection, station: str, at: datetime) -> bool:
    """Whether ``station`` is in maintenance at ``at`` (inside the caller's transaction)."""
    query = _active_query(utc_text(at)).where(maintenance.c.station == station).limit(1)
    return conn.execute(query).first() is not None
