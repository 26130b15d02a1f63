"""Each site's open critical alerts, published retained for its annunciators.

The hub publishes a kagiban.protocol.SiteAlarm on ``{prefix}/{site}/alarm`` (retained, QoS 1)
whenever the set of a site's open critical alerts may have changed (one raised, acknowledged
or closed: hub.alerting.alerts calls ``changed``) and for every site it knows at start, so an
annunciator that connects, or reconnects after the hub or the broker restarted, is told at once.
It needs nothing but the office's broker. The same state goes to the live page's bus
(``site_alarm``), so the status page's annunciator block follows it without a reload. Alerts raised while their station is in maintenance
(params ``maintenance``) notify nobody and do not sound either.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

from sqlalchemy import Engine, select

from hub.config import HubConfig
from hub.live import LiveBus
from hub.store.schema import alerts, stations
from kagiban import protocol

_LOG = logging.getLogger(__name__)

Publish = Callable[[str, bytes], None]


def open_critical(engine: Engine, site: str) -> list[int]:
    """The ids of the site's open critical alerts that sound (not raised in maintenance), ascending."""
    query = (select(alerts.c.id, alerts.c.params)
             .where(alerts.c.site == site, alerts.c.state == "open", alerts.c.severity == "critical")
             .order_by(alerts.c.id))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [row.id for row in rows if not _in_maintenance(row.params)]


def _in_maintenance(params: str | None) -> bool:
    try:
        value = json.loads(params or "{}")
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("maintenance") is True


class SiteAlarms:
    """Publishes the sites' alarm states; safe to call from any thread."""

    def __init__(self, engine: Engine, cfg: HubConfig, publish: Publish, bus: LiveBus | None = None):
        self.engine = engine
        self.cfg = cfg
        self.publish = publish
        self.bus = bus

    def state(self, site: str) -> protocol.SiteAlarm:
        """The site's alarm state now."""
        ids = open_critical(self.engine, site)
        return protocol.SiteAlarm(site=site, at=protocol.now_local().astimezone(self.cfg.site_zone(site)),
                                  count=len(ids), alerts=ids[-protocol.MAX_ALARM_IDS:])

    def changed(self, sites: Iterable[str]) -> None:
        """Publish the state of each of ``sites``; a failure is logged, never raised."""
        for site in sorted(set(sites)):
            try:
                alarm = self.state(site)
                if self.bus is not None:
                    self.bus.publish("site_alarm", alarm.model_dump(mode="json"))
                self.publish(protocol.alarm_topic(self.cfg.broker.prefix, site), protocol.dumps(alarm))
            except Exception:
                _LOG.exception("publishing the alarm state of site %s failed", site)
                continue
            _LOG.debug("site %s: %d open critical alert(s) published", site, alarm.count)

    def publish_all(self) -> None:
        """Every known site's state (the hub's configured sites and stations, and sites with alerts)."""
        sites = set(self.cfg.sites) | set((self.cfg.known_stations() or {}).values())
        with self.engine.connect() as conn:
            sites |= set(conn.execute(select(alerts.c.site).distinct()).scalars())
            sites |= set(conn.execute(select(stations.c.site).distinct()).scalars())
        self.changed(sites)
