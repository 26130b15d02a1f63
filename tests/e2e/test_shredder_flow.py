"""The two-person shredder end to end: mock pins (power relay, stop button, bin door) and the
stand-in reader and camera in a real agent, a real mosquitto, a real hub with its SQLite file,
and the shredding ledger and alerts read back as a supervisor would read them."""
from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from device import unit_file
from device.agent import Agent
from device.simulate import set_input
from hub import config as hub_config
from hub import registry
from hub.ledgers import shredding as shred_ledger
from hub.alerting.alerts import list_alerts
from hub.service import Hub
from tests.support.mosquitto import wait_for
from tests.support.stack import (
    ALWAYS,
    BIN_PIN,
    HOLDER,
    NEVER,
    POWER_PIN,
    SHREDDER,
    STANDIN,
    STOP_PIN,
    UNKNOWN,
    hub_db,
    kinds,
    query,
    write_hub,
    write_unit,
)

pytestmark = pytest.mark.e2e

SITE = "ward-a"
ZONE = ZoneInfo("Asia/Tokyo")


def today() -> str:
    return datetime.now(ZONE).date().isoformat()


@pytest.fixture
def shredder(broker, prefix, tmp_path):
    """Start a hub with one shredder listed (open all hours unless told) and its unit."""
    made: list = []

    def _start(hours: dict = ALWAYS, **timings):
        hub = Hub(hub_config.load(write_hub(tmp_path, broker.port, prefix, [
            {"id": SHREDDER, "kind": "shredder", "name": "Shredder 2F", "hours": hours}])))
        hub.start()
        made.append(hub)
        for number, name in (("S001", "Staff 001"), ("S002", "Staff 002")):
            registry.add_person(hub.engine, "admin", number, name)
        unit = write_unit(tmp_path, broker.port, prefix, SHREDDER, "shredder",
                          pins={"power_relay": POWER_PIN, "stop_button": STOP_PIN, "bin_sensor": BIN_PIN},
                          **{"pair_window_s": 3, "shred_max_s": 60, **timings})
        agent = Agent(unit_file.load(unit))
        agent.start()
        made.append(agent)
        wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=15, what="policy at the shredder")
        return hub, agent, hub_db(tmp_path / "hub.yaml")

    yield _start
    for thing in reversed(made):
        thing.stop()


def power(agent) -> bool:
    return agent.pin_factory.pin(POWER_PIN).state == 1


def ever_powered(agent) -> bool:
    return any(s.state for s in agent.pin_factory.pin(POWER_PIN).states)


def press_stop(agent) -> None:
    set_input(agent, "stop_button", True)
    time.sleep(0.2)  # longer than the 20 ms debounce: a real press
    set_input(agent, "stop_button", False)


def test_two_people_run_the_shredder_and_the_ledger_names_both(shredder):
    hub, agent, db = shredder()
    registry.set_roster(hub.engine, "admin", SHREDDER, today(), ["S001"])
    assert not power(agent)
    agent.reader.tap(HOLDER)
    time.sleep(0.3)
    assert not power(agent)  # one person alone never starts it
    agent.reader.tap(STANDIN)
    wait_for(lambda: power(agent), timeout=5, what="power relay on")
    time.sleep(0.5)
    press_stop(agent)
    wait_for(lambda: not power(agent), timeout=5, what="power relay off")

    wait_for(lambda: "shred.ended" in kinds(db, SHREDDER), timeout=15, what="the session at the hub")
    assert kinds(db, SHREDDER) == ["station.started", "badge.granted", "shred.waiting", "badge.granted",
                                   "shred.started", "shred.ended"]
    [started_id] = query(db, "SELECT event_id FROM events WHERE kind='shred.started'")[0]
    wait_for(lambda: query(db, "SELECT 1 FROM snapshots WHERE event_id=?", started_id), timeout=10,
             what="the snapshot of the two at the shredder")
    [row] = shred_ledger.sessions(hub.engine, hub.cfg, datetime.now(ZONE).date(), station=SHREDDER)
    assert row.people == ["S001", "S002"] and row.names == ["Staff 001", "Staff 002"]
    assert row.badges == [HOLDER, STANDIN]
    assert row.ended_by == "stop_button" and 0.5 <= row.duration_s < 5
    assert row.on_roster == [True, False] and not row.flagged and row.has_snapshot
    assert hub.rules.flush(10)
    assert [a["rule"] for a in list_alerts(hub.engine, station=SHREDDER)] == []
    wait_for(lambda: agent.call(lambda a: a.outbox.depth()) == 0, timeout=10, what="outbox emptied by acks")


def test_one_badge_the_same_badge_twice_or_an_unknown_second_badge_never_switch_it_on(shredder):
    _hub, agent, db = shredder(pair_window_s=1)
    agent.reader.tap(HOLDER)
    wait_for(lambda: "shred.refused" in kinds(db, SHREDDER), timeout=10, what="the window ran out")
    agent.reader.tap(HOLDER)
    time.sleep(0.2)
    agent.reader.tap(HOLDER)
    agent.reader.tap(STANDIN)
    time.sleep(0.2)
    agent.reader.tap(UNKNOWN)
    wait_for(lambda: len(query(db, "SELECT 1 FROM events WHERE kind='shred.refused'")) == 3, timeout=10,
             what="three refusals stored")
    reasons = [r for (r,) in query(db, "SELECT json_extract(data, '$.reason') FROM events "
                                       "WHERE kind='shred.refused' ORDER BY seq")]
    assert reasons == ["window_expired", "same_badge", "second_not_authorised"]
    assert not ever_powered(agent)
    assert "shred.started" not in kinds(db, SHREDDER)
    [(badge,)] = query(db, "SELECT badge FROM events WHERE kind='badge.denied'")
    assert badge == UNKNOWN


def test_a_session_stops_at_its_maximum_and_after_hours_off_roster_is_alerted(shredder):
    hub, agent, db = shredder(hours=NEVER, shred_max_s=1)
    agent.reader.tap(HOLDER)
    agent.reader.tap(STANDIN)
    wait_for(lambda: power(agent), timeout=5, what="power relay on")
    wait_for(lambda: not power(agent), timeout=5, what="stopped at its maximum length")
    wait_for(lambda: "shred.ended" in kinds(db, SHREDDER), timeout=15, what="the session at the hub")
    [row] = shred_ledger.sessions(hub.engine, hub.cfg, datetime.now(ZONE).date(), station=SHREDDER)
    assert row.ended_by == "max_length" and row.not_on_roster and row.after_hours
    assert hub.rules.flush(10)
    alerts = list_alerts(hub.engine, station=SHREDDER)
    assert [(a["rule"], a["severity"]) for a in alerts] == [("shred_flagged", "warning")]
    assert alerts[0]["params"]["flags"] == ["not_on_roster", "after_hours"]


def test_opening_the_bin_cuts_the_power(shredder):
    _hub, agent, db = shredder()
    agent.reader.tap(HOLDER)
    agent.reader.tap(STANDIN)
    wait_for(lambda: power(agent), timeout=5, what="power relay on")
    set_input(agent, "bin", True)
    wait_for(lambda: not power(agent), timeout=5, what="power off with the bin open")
    wait_for(lambda: "bin.opened" in kinds(db, SHREDDER), timeout=15, what="bin opening stored")
    [(ended_by,)] = query(db, "SELECT json_extract(data, '$.ended_by') FROM events WHERE kind='shred.ended'")
    assert ended_by == "bin_opened"
    set_input(agent, "bin", False)
    wait_for(lambda: "bin.closed" in kinds(db, SHREDDER), timeout=15, what="bin closing stored")


def test_a_scripted_scenario_presses_the_stop_button_and_opens_the_bin(shredder):
    from device.simulate import Scenario, ScenarioRunner
    from kagiban.configfile import convert

    _hub, agent, db = shredder()
    scenario = convert({"steps": [
        {"tap": HOLDER}, {"tap": STANDIN}, {"wait": 0.5}, {"press": "stop_button"}, {"wait": 0.3},
        {"bin": "open"}, {"wait": 0.3}, {"bin": "close"}]}, Scenario)
    runner = ScenarioRunner(agent, scenario)
    runner.start()
    wait_for(runner.done, timeout=10, what="the scenario played")
    wait_for(lambda: "bin.closed" in kinds(db, SHREDDER), timeout=15, what="the scenario's events stored")
    assert kinds(db, SHREDDER)[-4:] == ["shred.started", "shred.ended", "bin.opened", "bin.closed"]
    [(ended_by,)] = query(db, "SELECT json_extract(data, '$.ended_by') FROM events WHERE kind='shred.ended'")
    assert ended_by == "stop_button" and not power(agent)
