"""Migration 0009 on a store that already holds events: each station's latest event and latest
door event are the last stored (by row), whatever the time they carry, so a far-future row
stored before the migration does not become the station's latest."""
from __future__ import annotations

from alembic import command
from sqlalchemy import select, text

from hub.store import migrate
from hub.config import HubConfig
from hub.store.db import begin_write, make_engine
from hub.store.schema import events, stations
from hub.web.data import station_overview
from tests.hub.helpers import SITE


def test_0009_points_each_station_at_its_last_stored_events(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'kagiban.db'}")
    cfg = migrate.alembic_config()
    with begin_write(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
    rows = [(1, "door.opened", "9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59.000000Z"),
            (2, "key.used", "2025-04-01T09:00:00+09:00", "2025-04-01T00:00:00.000000Z"),
            (3, "door.closed", "2025-04-01T09:01:00+09:00", "2025-04-01T00:01:00.000000Z"),
            (4, "badge.granted", "2025-04-01T09:02:00+09:00", "2025-04-01T00:02:00.000000Z")]
    with engine.begin() as conn:
        for n, kind, at, at_utc in rows:
            conn.execute(text(
                "INSERT INTO events (row_no, site, station, seq, event_id, kind, at, at_utc, data, received_at, "
                "prev_hash, hash) VALUES (:n, :site, 'cabinet-1', :n, :id, :kind, :at, :at_utc, '{}', :at_utc, :h, :h)"),
                {"n": n, "site": SITE, "id": f"0190f3a2-7c1e-7b3a-9f00-00000000000{n}", "kind": kind, "at": at,
                 "at_utc": at_utc, "h": "0" * 64})
        conn.execute(text("INSERT INTO stations (station, site, state) VALUES ('cabinet-1', :site, 'online'),"
                          " ('cabinet-9', :site, 'unknown')"), {"site": SITE})

    assert migrate.upgrade(engine) == migrate.head_revision()

    with engine.connect() as conn:
        found = {r.station: (r.last_row_no, r.door_row_no, r.clock_offset_s) for r in conn.execute(select(stations))}
        assert conn.execute(select(events.c.time_flag)).scalars().all() == [None] * 4
    assert found == {"cabinet-1": (4, 3, None), "cabinet-9": (None, None, None)}
    overview = {s["station"]: s for s in station_overview(engine, HubConfig.model_validate({"data_dir": str(tmp_path)}))}
    assert overview["cabinet-1"]["last_kind"] == "badge.granted" and overview["cabinet-1"]["door"] == "closed"
    assert overview["cabinet-9"]["last_kind"] is None and overview["cabinet-1"]["clock_state"] == "unknown"
    engine.dispose()
