"""The hub's alert path without a broker, for the rules, notification, ledger and audit tests:
real payloads through a real Ingest into a real store (SQLite, or the test's PostgreSQL), the rules and the alert center
over it, restartable like the hub."""
from __future__ import annotations

from typing import Any

from hub.alerting.alerts import AlertCenter, list_alerts
from hub.alerting.rules import Rules
from hub.config import HubConfig
from hub.ingest.writer import Ingest
from hub.live import LiveBus
from hub.store import migrate
from hub.store.db import make_engine
from tests.hub.helpers import SITE, encode, event
from tests.support.postgres import database_section

PREFIX = "p"
TUESDAY = "2025-04-01"  # a working day in Tokyo
HOLIDAY = "2025-04-29"  # Showa Day, a Tuesday


class Stack:
    """Ingest -> rules -> alert center on one SQLite file; restartable like the hub."""

    def __init__(self, tmp_path, **cfg: Any):
        body = {"data_dir": str(tmp_path), "sites": {SITE: {"name": "Ward A", "holidays": [HOLIDAY]}},
                "stations": [
                    {"id": "cabinet-1", "site": SITE, "kind": "cabinet", "name": "Key cabinet 1"},
                    {"id": "cabinet-2", "site": SITE, "kind": "cabinet"},
                    {"id": "night-1", "site": SITE, "kind": "cabinet", "name": "Night desk",
                     "hours": {"days": ["fri"], "start": "22:00", "end": "06:00"}},
                ]}
        # The running test's store (PostgreSQL when parametrized so; SQLite's default file else).
        body.update(database_section(tmp_path))
        body.update(cfg)
        self.cfg = HubConfig.model_validate(body)
        self.engine = make_engine(self.cfg.db_url())
        migrate.upgrade(self.engine)
        self.published: list[tuple[str, bytes]] = []
        self.bus = LiveBus()
        self.rules: Rules | None = None

    def start_rules(self, notifier=None, publish=None) -> Rules:
        """The rules and alert center; alerts are published with ``publish(topic, payload)``
        (a real broker's client), else kept in ``published``."""
        center = AlertCenter(self.engine, self.cfg, publish=publish or (lambda t, p: self.published.append((t, p))),
                             bus=self.bus, notifier=notifier)
        self.rules = Rules(self.engine, self.cfg, center).start()
        return self.rules

    def stop_rules(self) -> None:
        if self.rules is not None:
            self.rules.stop()
            self.rules = None

    def feed(self, *messages: tuple[str, str, dict[str, Any]], rules: bool = True) -> None:
        """Store (channel, station, payload) messages through a real Ingest, then let the rules
        work through them."""
        wired = rules and self.rules is not None
        # Wired as the hub wires it: urgent events' alerts are stored in the events' transaction.
        ingest = Ingest(self.engine, prefix=PREFIX, batch_wait_s=0,
                        on_committed=self.rules.on_committed if wired and self.rules else None,
                        in_transaction=self.rules.alerts_in_transaction if wired and self.rules else None)
        ingest.start()
        for channel, station, body in messages:
            ingest.submit(f"{PREFIX}/{SITE}/{station}/{channel}", encode(body))
        ingest.stop()  # returns once everything submitted is committed
        if rules and self.rules:
            assert self.rules.flush(10), "rules did not catch up within 10 s"

    def alerts(self, rule: str | None = None, station: str | None = None) -> list[dict[str, Any]]:
        rows = list_alerts(self.engine, station=station)
        return [r for r in rows if rule is None or r["rule"] == rule]

    def rules_of(self, station: str | None = None) -> list[str]:
        return sorted(r["rule"] for r in self.alerts(station=station))

    def close(self) -> None:
        self.stop_rules()
        self.engine.dispose()


def ev(station: str, seq: int, kind: str, at: str, *, data: dict | None = None, **extra: Any):
    """An event message as Stack.feed takes it, decided under policy version 3."""
    body = event(station, seq, kind=kind, at=at, data={"policy_version": 3, **(data or {})}, **extra)
    return ("event", station, body)
