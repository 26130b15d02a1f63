"""Faults on the path from station to store: nothing committed at the station is lost, and
nothing is stored twice, whatever stops in between."""
import time
from pathlib import Path

import pytest
import yaml

from device import unit_file
from device.agent import Agent
from hub import config as hub_config
from hub.service import Hub
from tests.support.mosquitto import wait_for
from tests.support.stack import (
    UNKNOWN,
    hub_db,
    kill9,
    outbox_depth,
    query,
    spawn,
    terminate,
    write_hub_config,
    write_unit_config,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def assert_each_stored_once(db: Path, station: str, last_seq: int) -> None:
    rows = query(db, "SELECT seq, event_id FROM events WHERE station=? ORDER BY seq", station)
    seqs = [r[0] for r in rows]
    assert seqs == list(range(1, last_seq + 1)), f"missing {sorted(set(range(1, last_seq + 1)) - set(seqs))}"
    assert len({r[1] for r in rows}) == len(rows)


def all_stored(db: Path, station: str, last_seq: int) -> bool:
    if not db.exists():
        return False
    got = query(db, "SELECT count(*), max(seq) FROM events WHERE station=?", station)[0]
    return got == (last_seq, last_seq)


def tap_for(agent: Agent, seconds: float, every: float = 0.05) -> int:
    """Tap an unknown badge repeatedly (each tap is one denied event); returns taps made."""
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and n < 1000:
        agent.reader.tap(UNKNOWN)
        n += 1
        time.sleep(every)
    return n


def last_seq(agent: Agent) -> int:
    return agent.call(lambda a: a.outbox.next_seq()) - 1


def test_broker_stopped_mid_stream_loses_nothing_and_stores_nothing_twice(own_broker, prefix, tmp_path):
    hub = Hub(hub_config.load(write_hub_config(tmp_path, own_broker.port, prefix)))
    hub.start()
    agent = Agent(unit_file.load(write_unit_config(tmp_path, own_broker.port, prefix))).start()
    try:
        tap_for(agent, 1.0)
        own_broker.stop()
        tap_for(agent, 3.0)  # decided and committed while the broker is gone
        assert agent.call(lambda a: a.outbox.depth()) > 0
        own_broker.start()
        tap_for(agent, 1.0)
        db = hub_db(tmp_path / "hub.yaml")
        n = last_seq(agent)
        wait_for(lambda: all_stored(db, "cabinet-1", n), timeout=30, what=f"{n} events stored")
        assert_each_stored_once(db, "cabinet-1", n)
        wait_for(lambda: agent.call(lambda a: a.outbox.depth()) == 0, timeout=15, what="outbox empty")
    finally:
        agent.stop()
        hub.stop()


def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "taps.yaml"
    path.write_text(yaml.safe_dump({"repeat": 0, "steps": [{"tap": UNKNOWN}, {"wait": 0.03}]}))
    return path


def test_agent_killed_with_unsent_events_delivers_each_once_after_restart(broker, prefix, tmp_path):
    unit = write_unit_config(tmp_path, broker.port, prefix)
    hubcfg = write_hub_config(tmp_path, broker.port, prefix)
    db = hub_db(hubcfg)
    # No hub yet: nothing is acknowledged, so everything stays in the outbox.
    agent = spawn(["device", "--config", str(unit), "--scenario", str(scenario_file(tmp_path))], tmp_path / "agent.log")
    try:
        wait_for(lambda: (unit.parent / "cabinet-1-data" / "outbox.sqlite").exists() and outbox_depth(unit) >= 30,
                 timeout=30, what="30 unsent events")
    finally:
        kill9(agent)
    hub = Hub(hub_config.load(hubcfg))
    hub.start()
    # Killed twice more while sending, at different moments, like power cuts.
    for pause in (0.3, 0.7):
        agent = spawn(["device", "--config", str(unit), "--scenario", str(scenario_file(tmp_path))],
                      tmp_path / "agent.log")
        time.sleep(1.0 + pause)
        kill9(agent)
    agent = spawn(["device", "--config", str(unit)], tmp_path / "agent.log")
    try:
        n = device_last_seq(unit)
        wait_for(lambda: all_stored(db, "cabinet-1", device_last_seq(unit)), timeout=45, what="all events stored")
        assert device_last_seq(unit) >= n
        assert_each_stored_once(db, "cabinet-1", device_last_seq(unit))
        wait_for(lambda: outbox_depth(unit) == 0, timeout=15, what="outbox empty")
    finally:
        terminate(agent)
        hub.stop()


def device_last_seq(unit: Path) -> int:
    import sqlite3

    con = sqlite3.connect(unit.parent / "cabinet-1-data" / "outbox.sqlite")
    try:
        return con.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0] - 1
    finally:
        con.close()


def test_hub_killed_and_restarted_loses_nothing(broker, prefix, tmp_path):
    hubcfg = write_hub_config(tmp_path, broker.port, prefix)
    db = hub_db(hubcfg)
    hub = spawn(["hub", "--config", str(hubcfg)], tmp_path / "hub.log")
    agent = Agent(unit_file.load(write_unit_config(tmp_path, broker.port, prefix))).start()
    try:
        wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=20, what="policy from the hub")
        tap_for(agent, 1.0)
        kill9(hub)
        tap_for(agent, 1.5)
        hub = spawn(["hub", "--config", str(hubcfg)], tmp_path / "hub.log")
        tap_for(agent, 1.0)
        kill9(hub)
        hub = spawn(["hub", "--config", str(hubcfg)], tmp_path / "hub.log")
        n = last_seq(agent)
        wait_for(lambda: all_stored(db, "cabinet-1", n), timeout=45, what=f"{n} events stored")
        assert_each_stored_once(db, "cabinet-1", n)
    finally:
        agent.stop()
        terminate(hub)
    from hub.audit.verify import run as verify

    assert verify(f"sqlite:///{db}") == 0
