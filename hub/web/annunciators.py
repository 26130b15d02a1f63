"""The annunciators of the status page: each one's lamp as its last heartbeat reported it.

An annunciator (device/stations/annunciator.py) says in every heartbeat whether its lamp is
off, lit (buzzer silenced) or sounding (kagiban.protocol.Heartbeat.signal); beside it the page
shows how many critical alerts of its site are open, which is what the hub publishes to it
(hub.alerting.alarm), so a lamp that disagrees with the hub stands out.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from hub.alerting.alarm import open_critical
from hub.config import HubConfig
from hub.stations.directory import display_name
from hub.stations.state import last_heartbeat, parse_time
from hub.store.schema import stations

_LOG = logging.getLogger(__name__)

KIND = "annunciator"
SIGNALS = ("off", "lit", "sounding")


@dataclass(frozen=True)
class AnnunciatorView:
    """One annunciator as the page shows it; ``signal`` is ``unknown`` before its first heartbeat."""

    station: str
    name: str
    site: str
    state: str
    signal: str
    reported_at: datetime | None
    open_critical: int


def annunciators(engine: Engine, cfg: HubConfig) -> list[AnnunciatorView]:
    """Every annunciator (listed so in the hub config, or reported so), by station id."""
    with engine.connect() as conn:
        rows = {r.station: r for r in conn.execute(
            select(stations.c.station, stations.c.site, stations.c.kind, stations.c.state,
                   stations.c.last_heartbeat))}
    listed = {e.id: e.site for e in cfg.stations or [] if e.kind == KIND}
    wanted = set(listed) | {s for s, r in rows.items() if r.kind == KIND and (cfg.stations is None or s in listed)}
    open_by_site: dict[str, int] = {}
    out = []
    for station in sorted(wanted):
        row = rows.get(station)
        site = listed.get(station) or (row.site if row is not None else "")
        heartbeat = last_heartbeat(row.last_heartbeat if row is not None else None)
        signal = heartbeat.get("signal")
        if site not in open_by_site:
            open_by_site[site] = len(open_critical(engine, site))
        out.append(AnnunciatorView(
            station=station, name=display_name(cfg, station), site=site,
            state=row.state if row is not None else "unknown",
            signal=signal if signal in SIGNALS else "unknown",
            reported_at=parse_time(heartbeat.get("at")), open_critical=open_by_site[site]))
    return out
