"""Peripherals that fail degrade a station, never stop it: a key cabinet whose camera is
missing, end to end (a real agent with mock pins and the stand-in reader and camera, a real
mosquitto, a real hub and its SQLite file)."""
import json
import time

import pytest
import yaml

from device import unit_file
from device.agent import Agent
from device.simulate import set_door
from hub import config as hub_config
from hub.alerting.alerts import list_alerts
from hub.service import Hub
from tests.support.mosquitto import wait_for
from tests.support.stack import HOLDER, hub_db, query, write_hub_config, write_unit_config

pytestmark = pytest.mark.e2e
LOCK_PIN = 27


def test_a_cabinet_without_its_camera_grants_reports_a_forced_door_and_the_hub_raises_camera_failed(
        broker, prefix, tmp_path):
    hub = Hub(hub_config.load(write_hub_config(tmp_path, broker.port, prefix)))
    hub.start()
    unit = write_unit_config(tmp_path, broker.port, prefix, unlock_s=1)
    cfg = yaml.safe_load(unit.read_text())
    cfg["camera"]["fault"] = "missing"  # as a Pi whose camera is not attached
    unit.write_text(yaml.safe_dump(cfg))
    agent = Agent(unit_file.load(unit)).start()
    db = hub_db(tmp_path / "hub.yaml")
    try:
        wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=15, what="policy at the station")
        agent.reader.tap(HOLDER)
        wait_for(lambda: agent.pin_factory.pin(LOCK_PIN).state == 1, timeout=5, what="unlocked for the holder")
        wait_for(lambda: agent.pin_factory.pin(LOCK_PIN).state == 0, timeout=5, what="locked again")
        set_door(agent, True)
        forced = wait_for(lambda: query(db, "SELECT event_id FROM events WHERE kind='door.forced'"),
                          timeout=10, what="forced door stored")[0][0]
        failed = wait_for(lambda: query(db, "SELECT data FROM events WHERE kind='snapshot.failed'"),
                          timeout=10, what="snapshot.failed stored")
        data = json.loads(failed[0][0])
        assert (data["event_id"], data["for_kind"], data["error"]) == (forced, "door.forced", "camera_absent")
        kinds = [k for (k,) in query(db, "SELECT kind FROM events WHERE station='cabinet-1' ORDER BY seq")]
        assert kinds[:4] == ["station.started", "badge.granted", "unlock.expired", "door.forced"]
        alert = wait_for(lambda: [a for a in list_alerts(hub.engine) if a["rule"] == "camera_failed"],
                         timeout=10, what="camera_failed raised")[0]
        assert alert["station"] == "cabinet-1" and alert["params"]["error_code"] == "not_found"
        # The rules raise after the commit: the forced alert may follow the stored event a moment later.
        wait_for(lambda: {a["rule"] for a in list_alerts(hub.engine)} >= {"camera_failed", "forced"},
                 timeout=10, what="forced raised beside camera_failed")
        time.sleep(4.5)  # two more heartbeats: the alert is not raised again
        assert len([a for a in list_alerts(hub.engine) if a["rule"] == "camera_failed"]) == 1
        set_door(agent, False)
    finally:
        agent.stop()
        hub.stop()
