"""Whether each office (site) is being heard at the central hub.

A site whose stations reach the hub through its own broker and a bridge (docs/offices.md) goes
quiet all at once when that office's uplink is down, while its stations go on deciding and
keeping their events. The central status page shows such a site as ``stale`` when none of its
stations has been heard (an event, a status or a heartbeat received: ``stations.last_seen``,
the hub's receive time, never a station's clock) for ``rules.site_stale_after_s`` seconds, and
as ``fresh`` again as soon as one is. ``unheard``: the config lists stations there, but none has
ever been heard.

Read-only and pure apart from one query: a value in the stations table that cannot be read as
a time counts as never heard, so no stored value makes the page fail.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.engine import Engine

from hub.config import HubConfig
from hub.stations.state import parse_time
from hub.store.schema import stations

SiteState = Literal["fresh", "stale", "unheard"]


@dataclass(frozen=True)
class SiteFreshness:
    """One site as the status page shows it: its state, when it was last heard, and for how long
    it has been silent (None when never heard)."""

    site: str
    state: SiteState
    stations: int
    last_heard: datetime | None
    silent_s: float | None


def judge(site: str, heard: list[datetime | None], now: datetime, stale_after_s: float) -> SiteFreshness:
    """A site from the receive times of its stations (None: a station never heard)."""
    times = [t for t in heard if t is not None]
    if not times:
        return SiteFreshness(site, "unheard", len(heard), None, None)
    last = max(times)
    # A receive time ahead of now (the hub's clock stepped back) counts as just heard.
    silent = max(0.0, (now - last).total_seconds())
    return SiteFreshness(site, "stale" if silent >= stale_after_s else "fresh", len(heard), last, silent)


def site_freshness(engine: Engine, cfg: HubConfig, now: datetime) -> list[SiteFreshness]:
    """Every site the hub knows (listed in the config's stations or sites, or heard from), by
    site id. A station listed under one site in the config counts for that site only."""
    listed = cfg.known_stations()
    heard: dict[str, dict[str, datetime | None]] = {site: {} for site in cfg.sites}
    for station, site in (listed or {}).items():
        heard.setdefault(site, {})[station] = None
    with engine.connect() as conn:
        for row in conn.execute(select(stations.c.station, stations.c.site, stations.c.last_seen)):
            if listed is not None and row.station not in listed:
                continue  # not the hub's any more (its messages are quarantined)
            # The config's site wins: a station heard under another site's topic was quarantined.
            site = listed[row.station] if listed is not None else row.site
            heard.setdefault(site, {})[row.station] = parse_time(row.last_seen)
    stale_after = cfg.rules.site_stale_after_s
    return [judge(site, list(heard[site].values()), now, stale_after) for site in sorted(heard)]
