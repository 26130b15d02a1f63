"""A restricted back-office door end to end: mock pins (reed switch, lock relay) and the stand-in
reader and camera in a real agent, a real mosquitto, a real hub: who came in with a badge, an
entry without one (an intrusion, with its photo), entries after hours and a door propped open,
read back as the supervisor's alerts."""
from __future__ import annotations

import time

import pytest

from device import unit_file
from device.agent import Agent
from device.simulate import set_door
from hub import config as hub_config
from hub.alerting.alerts import list_alerts
from hub.service import Hub
from tests.support.stack import ALWAYS, NEVER, kinds, write_hub, write_unit
from tests.support.mosquitto import wait_for
from tests.support.stack import HOLDER, hub_db, query

pytestmark = pytest.mark.e2e

DOOR = "door-1"
LOCK_PIN = 27


@pytest.fixture
def door(broker, prefix, tmp_path):
    """Start a hub with one restricted door listed and its unit."""
    made: list = []

    def _start(hours: dict = ALWAYS, reader: str = "standin", **timings):
        hub = Hub(hub_config.load(write_hub(tmp_path, broker.port, prefix, [
            {"id": DOOR, "kind": "door", "name": "Back office door", "hours": hours}])))
        hub.start()
        made.append(hub)
        unit = write_unit(tmp_path, broker.port, prefix, DOOR, "door", pins={"door": 17, "lock": LOCK_PIN},
                          reader=reader, **timings)
        agent = Agent(unit_file.load(unit))
        agent.start()
        made.append(agent)
        wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=15, what="policy at the door")
        return hub, agent, hub_db(tmp_path / "hub.yaml")

    yield _start
    for thing in reversed(made):
        thing.stop()


def alerts(hub) -> list[tuple[str, str]]:
    assert hub.rules.flush(10)
    return sorted((a["rule"], a["severity"]) for a in list_alerts(hub.engine, station=DOOR))


def walk_in(agent) -> None:
    """Staff 001 badges, opens the door, goes through, lets it close."""
    agent.reader.tap(HOLDER)
    wait_for(lambda: agent.pin_factory.pin(LOCK_PIN).state == 1, timeout=5, what="door unlocked")
    set_door(agent, True)
    time.sleep(0.2)
    set_door(agent, False)


def test_a_badged_entry_is_recorded_and_an_entry_without_a_badge_is_an_intrusion(door):
    hub, agent, db = door()
    walk_in(agent)
    wait_for(lambda: "door.closed" in kinds(db, DOOR), timeout=15, what="the entry stored")
    [(person, data)] = query(db, "SELECT person, data FROM events WHERE kind='door.opened'")
    assert person == "S001" and '"authorised":true' in data.replace(" ", "")
    assert agent.pin_factory.pin(LOCK_PIN).state == 0  # relocked once the door opened
    assert alerts(hub) == []

    set_door(agent, True)
    intrusion = wait_for(lambda: query(db, "SELECT event_id FROM events WHERE kind='door.intrusion'"),
                         timeout=10, what="the intrusion stored")
    snap = wait_for(lambda: query(db, "SELECT image FROM snapshots WHERE event_id=?", intrusion[0][0]),
                    timeout=10, what="the intrusion's photo")
    assert snap[0][0][:2] == b"\xff\xd8"
    wait_for(lambda: alerts(hub) == [("intrusion", "critical")], timeout=10, what="the intrusion alert")
    [alert] = list_alerts(hub.engine, station=DOOR)
    assert "Back office door" in alert["message"] and alert["event_id"] == intrusion[0][0]
    set_door(agent, False)


def test_after_hours_every_opening_is_alerted_badged_or_not(door):
    hub, agent, db = door(hours=NEVER)
    walk_in(agent)
    wait_for(lambda: "door.closed" in kinds(db, DOOR), timeout=15, what="the entry stored")
    # One alert for the entry: its opening, not also the tap.
    wait_for(lambda: alerts(hub) == [("after_hours", "warning")], timeout=10, what="after-hours entry")
    [alert] = list_alerts(hub.engine, station=DOOR)
    assert alert["params"]["kind"] == "door.opened" and alert["params"]["person"] == "S001"
    set_door(agent, True)
    wait_for(lambda: alerts(hub) == [("after_hours", "warning"), ("after_hours", "warning"),
                                     ("intrusion", "critical")], timeout=10, what="after-hours intrusion")
    set_door(agent, False)


def test_a_door_propped_open_is_held_open(door):
    hub, agent, db = door(held_open_s=1)
    agent.reader.tap(HOLDER)
    wait_for(lambda: agent.pin_factory.pin(LOCK_PIN).state == 1, timeout=5, what="door unlocked")
    set_door(agent, True)
    wait_for(lambda: "door.held_open" in kinds(db, DOOR), timeout=10, what="held open stored")
    wait_for(lambda: ("held_open", "warning") in alerts(hub), timeout=10, what="held-open alert")
    set_door(agent, False)


def test_a_door_without_a_reader_records_openings_without_calling_them_intrusions(door):
    hub, agent, db = door(reader="none")
    set_door(agent, True)
    time.sleep(0.2)
    set_door(agent, False)
    wait_for(lambda: "door.closed" in kinds(db, DOOR), timeout=15, what="the opening stored")
    assert "door.intrusion" not in kinds(db, DOOR) and "door.opened" in kinds(db, DOOR)
    assert alerts(hub) == []
