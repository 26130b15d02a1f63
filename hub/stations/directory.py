"""The stations the hub knows, in one place: each one's display name, site name and kind.

A station is known from the hub config (its ``stations:`` list, which wins) and from what it
has reported (the ``stations`` table). Every page, ledger, alert, notification and close-out
asks here, so a station reads the same everywhere and "the stations of kind X" means one
thing.
"""
from __future__ import annotations

from sqlalchemy import Engine, select

from hub.config import HubConfig
from hub.store.schema import stations


def display_name(cfg: HubConfig, station: str) -> str:
    """The station's name in the hub config, else its id."""
    entry = cfg.station(station)
    return entry.name if entry is not None and entry.name else station


def site_name(cfg: HubConfig, site: str) -> str:
    """The site's name in the hub config, else its id."""
    return cfg.site(site).name or site


def stations_of_kind(engine: Engine, cfg: HubConfig, kind: str, site: str | None = None) -> list[str]:
    """Stations of ``kind`` (listed so in the hub config, else reported so), optionally only
    those of ``site``, sorted by id.

    A station whose kind is not known yet (it stored events before its first status and is not
    listed) is counted in every kind: the ledgers pick events by their own kind, so nothing it
    recorded is left out while the hub waits to learn what it is.
    """
    with engine.connect() as conn:
        known = {r.station: (r.site, r.kind) for r in conn.execute(
            select(stations.c.station, stations.c.site, stations.c.kind))}
    for entry in cfg.stations or []:
        known[entry.id] = (entry.site, entry.kind)
    return sorted(station for station, (its_site, its_kind) in known.items()
                  if its_kind in (None, kind) and (site is None or its_site == site))
