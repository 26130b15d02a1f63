"""Prometheus metrics of the hub, read when scraped: the ingest counters of this process (from a
``stats`` callable) and what the store says now (alerts, station states).

Each web app gets its own CollectorRegistry, so two hubs in one process (tests) never share
or double-register metrics. The scrape endpoint is ``/metrics`` on the web page, behind the
same sign-in as the rest: for Prometheus a personal API token (``authorization`` with a
``credentials_file``; hub.accounts.tokens), which costs far less per scrape than HTTP Basic's argon2.

``stats()`` returns a mapping with any of: ``ingested``, ``duplicates``, ``quarantined``,
``snapshots``, ``backlog`` (ints) and ``broker_connected`` (bool). Without it, the totals
come from the store (events in the chain, quarantined rows).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import Engine, func, select

from hub.store.schema import alerts, chain_head, quarantine, stations

_LOG = logging.getLogger(__name__)

Stats = Callable[[], Mapping[str, Any]]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HubCollector:
    """Collects the hub's metrics at scrape time."""

    def __init__(self, engine: Engine, stats: Stats | None = None):
        self._engine = engine
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        figures: Mapping[str, Any] = {}
        if self._stats is not None:
            try:
                figures = self._stats() or {}
            except Exception:  # a scrape must not fail because one figure could not be read
                _LOG.exception("reading the hub's counters for metrics failed")
        with self._engine.connect() as conn:
            if "ingested" in figures:
                ingested = figures["ingested"]
            else:
                ingested = conn.execute(select(chain_head.c.row_no).where(chain_head.c.id == 1)).scalar() or 0
            if "quarantined" in figures:
                quarantined = figures["quarantined"]
            else:
                quarantined = conn.execute(select(func.count()).select_from(quarantine)).scalar() or 0
            by_rule = conn.execute(select(alerts.c.rule, func.count()).group_by(alerts.c.rule)).all()
            open_alerts = conn.execute(
                select(func.count()).select_from(alerts).where(alerts.c.state == "open")).scalar() or 0
            states: dict[str, int] = dict(conn.execute(select(stations.c.state, func.count()).group_by(stations.c.state)).all())

        c = CounterMetricFamily("kagiban_events_ingested", "Events newly stored in the audit trail.")
        c.add_metric([], float(ingested))
        yield c
        c = CounterMetricFamily("kagiban_quarantined", "Messages refused and kept in quarantine.")
        c.add_metric([], float(quarantined))
        yield c
        for key, doc in (("duplicates", "Events and snapshots received again and ignored."),
                         ("snapshots", "Camera snapshots stored.")):
            if key in figures:
                c = CounterMetricFamily(f"kagiban_{key}", doc)
                c.add_metric([], float(figures[key]))
                yield c
        c = CounterMetricFamily("kagiban_alerts", "Alerts raised, by rule.", labels=["rule"])
        for rule, count in sorted(by_rule):
            c.add_metric([rule], float(count))
        yield c
        g = GaugeMetricFamily("kagiban_alerts_open", "Alerts not yet acknowledged.")
        g.add_metric([], float(open_alerts))
        yield g
        g = GaugeMetricFamily("kagiban_stations_online", "Stations whose last word was online.")
        g.add_metric([], float(states.get("online", 0)))
        yield g
        g = GaugeMetricFamily("kagiban_stations", "Known stations by state.", labels=["state"])
        for state in ("online", "offline", "stopped", "unknown"):
            g.add_metric([state], float(states.get(state, 0)))
        yield g
        if "backlog" in figures:
            g = GaugeMetricFamily("kagiban_ingest_backlog", "Messages received, not yet in a batch.")
            g.add_metric([], float(figures["backlog"]))
            yield g
        if "broker_connected" in figures:
            g = GaugeMetricFamily("kagiban_broker_connected", "1 while subscribed at the broker.")
            g.add_metric([], 1.0 if figures["broker_connected"] else 0.0)
            yield g


def make_registry(engine: Engine, stats: Stats | None = None) -> CollectorRegistry:
    """A registry of its own holding only the hub's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(engine, stats))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)
