"""Fixtures for the near-miss tests: a fresh, migrated store per test (SQLite, then PostgreSQL), a hub config with
two cabinets in Tokyo, and a forced-door alert with its event and photo stored through a real
Ingest."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from hub.alerting.alerts import AlertCenter
from hub.config import load
from hub.store import migrate
from hub.store.db import make_engine
from tests.hub.helpers import event, snapshot
from tests.support.web_app import store, write_config


@pytest.fixture
def cfg(tmp_path, store):
    return load(write_config(tmp_path / "hub"))


@pytest.fixture
def engine(cfg):
    eng = make_engine(cfg.db_url())
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def forced_alert(engine, cfg):
    """A forced door at cabinet-1 (2025-04-01 09:00:05 JST) with a photo, an earlier event
    of the same minute, and an event at the other cabinet; the alert's id and its event's id."""
    before = event("cabinet-1", 1, kind="door.opened")
    forced = event("cabinet-1", 5, kind="door.forced", person=None, badge=None)
    other = event("cabinet-2", 2, kind="door.opened")
    store(engine, [("event", before), ("event", forced), ("event", other)],
          snapshots=[snapshot("cabinet-1", forced["id"])])
    alert_id = AlertCenter(engine, cfg).raise_alert(
        site="ward-a", station="cabinet-1", rule="forced", severity="critical", message="door forced at cabinet-1",
        params={"station": "cabinet-1"}, event_id=forced["id"],
        raised_at=datetime(2025, 4, 1, 0, 0, 6, tzinfo=timezone.utc))
    return alert_id, forced["id"], before["id"], other["id"]
