"""An on-site annunciator end to end: a real mosquitto, a real hub, a key cabinet and an
annunciator on mock pins. A forced cabinet door lights and sounds it; its silence button stops
the buzzer (recorded at the hub, the alert still open); a new critical alert sounds again;
acknowledging the alerts turns the lamp off. Nothing but the broker links the unit to the hub."""
from __future__ import annotations

import json
import time

import pytest

from device import unit_file
from device.agent import Agent
from device.simulate import set_door, set_input
from hub import config as hub_config
from hub.alerting.alerts import get_alert, list_alerts
from hub.service import Hub
from tests.support.mosquitto import wait_for
from tests.support.stack import ALWAYS, hub_db, kinds, query, write_hub, write_unit

pytestmark = pytest.mark.e2e

CABINET = "cabinet-1"
ANNUNCIATOR = "annunciator-1"
LAMP, BUZZER, SILENCE = 5, 6, 13


@pytest.fixture
def site(broker, prefix, tmp_path):
    """A hub with a cabinet and an annunciator listed, and both units running."""
    made: list = []
    hub = Hub(hub_config.load(write_hub(tmp_path, broker.port, prefix, [
        {"id": CABINET, "kind": "cabinet", "name": "Key cabinet", "hours": ALWAYS},
        {"id": ANNUNCIATOR, "kind": "annunciator", "name": "Back office annunciator"}])))
    hub.start()
    made.append(hub)
    cabinet = Agent(unit_file.load(write_unit(tmp_path, broker.port, prefix, CABINET, "cabinet",
                                              pins={"door": 17, "lock": 27})))
    annunciator = Agent(unit_file.load(write_unit(
        tmp_path, broker.port, prefix, ANNUNCIATOR, "annunciator", reader="none",
        pins={"lamp": LAMP, "buzzer": BUZZER, "silence_button": SILENCE})))
    for agent in (cabinet, annunciator):
        agent.start()
        made.append(agent)
    wait_for(lambda: cabinet.call(lambda a: a.policy.version), timeout=15, what="policy at the cabinet")
    wait_for(lambda: annunciator.connected, timeout=15, what="the annunciator connected")
    yield hub, cabinet, annunciator, hub_db(tmp_path / "hub.yaml")
    for thing in reversed(made):
        thing.stop()


def pin(agent, number: int) -> int:
    return agent.pin_factory.pin(number).state


def signal_at_hub(db) -> str | None:
    """The annunciator's lamp state as its last heartbeat told the hub (what the status page shows)."""
    rows = query(db, "SELECT last_heartbeat FROM stations WHERE station=?", ANNUNCIATOR)
    return json.loads(rows[0][0]).get("signal") if rows and rows[0][0] else None


def open_critical(hub) -> list[int]:
    assert hub.rules.flush(10)
    return sorted(a["id"] for a in list_alerts(hub.engine, state="open", station=CABINET)
                  if a["severity"] == "critical")


def force_the_cabinet(hub, cabinet, known: int) -> list[int]:
    """Open the cabinet's door without a badge and close it again; the open critical alerts."""
    set_door(cabinet, True)
    found = wait_for(lambda: (ids := open_critical(hub)) and len(ids) > known and ids, timeout=15,
                     what="a forced-door alert")
    set_door(cabinet, False)
    return found


def press_silence(annunciator) -> None:
    set_input(annunciator, "silence", True)
    time.sleep(0.2)
    set_input(annunciator, "silence", False)


def test_a_forced_door_sounds_the_annunciator_the_button_silences_it_and_acknowledging_darkens_it(site):
    hub, cabinet, annunciator, db = site
    assert (pin(annunciator, LAMP), pin(annunciator, BUZZER)) == (0, 0)

    [first] = force_the_cabinet(hub, cabinet, known=0)
    assert get_alert(hub.engine, first)["rule"] == "forced"
    wait_for(lambda: pin(annunciator, LAMP) == 1 and pin(annunciator, BUZZER) == 1, timeout=10,
             what="the lamp lit and the buzzer sounding")

    press_silence(annunciator)
    wait_for(lambda: pin(annunciator, BUZZER) == 0, timeout=10, what="the buzzer silenced")
    assert pin(annunciator, LAMP) == 1  # silenced, not acknowledged: the lamp stays lit
    wait_for(lambda: "annunciator.silenced" in kinds(db, ANNUNCIATOR), timeout=15, what="the silence stored")
    [(data,)] = query(db, "SELECT data FROM events WHERE station=? AND kind='annunciator.silenced'", ANNUNCIATOR)
    assert json.loads(data)["alerts"] == [first]
    assert get_alert(hub.engine, first)["state"] == "open"

    both = force_the_cabinet(hub, cabinet, known=1)
    assert len(both) == 2
    wait_for(lambda: pin(annunciator, BUZZER) == 1, timeout=10, what="a new critical alert sounding again")
    wait_for(lambda: signal_at_hub(db) == "sounding", timeout=10, what="the hub told by the heartbeat")

    assert hub.alerts.acknowledge(both[0], "supervisor", "checked the cabinet")
    time.sleep(1.0)
    assert pin(annunciator, LAMP) == 1  # one critical alert is still open
    assert hub.alerts.acknowledge_many([both[1]], "supervisor", "checked the cabinet") == [both[1]]
    wait_for(lambda: pin(annunciator, LAMP) == 0 and pin(annunciator, BUZZER) == 0, timeout=10,
             what="the lamp off once every critical alert is acknowledged")
    wait_for(lambda: signal_at_hub(db) == "off", timeout=10, what="the hub told the lamp is off")
