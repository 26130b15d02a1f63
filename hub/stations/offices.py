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

``OfficeWatch`` keeps an open status page's Offices table current: the rules thread calls its
``check`` every second while a page is open, and it publishes an ``offices`` message
(``OfficesChanged``) on the live bus when a site's state changed since the last check. A site
goes stale by the clock alone (nothing arrives when its uplink is down), so the check reads the
receive times again each time rather than waiting for an event.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.engine import Engine

from hub.config import HubConfig
from hub.live import LiveBus
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


LIVE_KIND = "offices"  # the live bus's message type


@dataclass(frozen=True)
class OfficeChange:
    """One site whose state changed: ``was`` None when the watch had not seen the site before."""

    site: str
    state: SiteState
    was: SiteState | None


@dataclass(frozen=True)
class OfficesChanged:
    """The live bus's ``offices`` message: the sites whose state changed at one check. The page
    is drawn from the store again (hub.web.pages), so it carries only what scoping needs."""

    changes: tuple[OfficeChange, ...]

    def payload(self) -> dict[str, Any]:
        return {"changes": [asdict(c) for c in self.changes]}

    @staticmethod
    def sites_in(payload: Any) -> set[str]:
        """The sites a message (as the bus hands it over, parsed JSON) names; none if malformed."""
        changes = payload.get("changes") if isinstance(payload, dict) else None
        if not isinstance(changes, list):
            return set()
        return {c["site"] for c in changes if isinstance(c, dict) and isinstance(c.get("site"), str)}


def changes(before: dict[str, SiteState], now: list[SiteFreshness]) -> tuple[OfficeChange, ...]:
    """The sites of ``now`` whose state differs from ``before`` (a site new to ``before`` counts)."""
    return tuple(OfficeChange(s.site, s.state, before.get(s.site)) for s in now if before.get(s.site) != s.state)


class OfficeWatch:
    """Publishes ``offices`` on ``bus`` when a site's state changes; called from one thread.

    While no page is open it reads nothing and forgets what it saw; its first check after a
    page opened names every site, so a change between that page's drawing and its stream's
    first look is not missed (a stream also sends the table once after subscribing, for a page
    that opens while others are open).
    """

    def __init__(self, engine: Engine, cfg: HubConfig, bus: LiveBus):
        self.engine = engine
        self.cfg = cfg
        self.bus = bus
        self._seen: dict[str, SiteState] | None = None
        self.published = 0  # messages sent, for tests and metrics

    def check(self, now: datetime) -> OfficesChanged | None:
        """Judge every site at ``now``; publish and return the changes since the last check
        (every site at the first check while a page is open; None with no page open, with
        fewer than two sites or nothing changed)."""
        if not self.bus.subscribers:
            self._seen = None
            return None
        sites = site_freshness(self.engine, self.cfg, now)
        if len(sites) < 2:  # one office: the page shows no table (hub.web.pages._offices)
            return None
        before, self._seen = self._seen or {}, {s.site: s.state for s in sites}
        found = changes(before, sites)
        if not found:
            return None
        message = OfficesChanged(found)
        self.bus.publish(LIVE_KIND, message.payload())
        self.published += 1
        return message
