"""Times you can trust, end to end: two real agents (mock pins, stand-in reader and camera) behind
the clock seam, a real mosquitto and a real hub. One station's clock says it is not
synchronised (a Pi after a power cut, before the network answers), the other runs 10 minutes
ahead; the hub raises clock_unsynced and clock_skew, flags what they record, and the status
page shows each station's offset."""
import base64
import json
from datetime import datetime

import pytest

from device import unit_file
from device.agent import Agent
from device.clock import StandinClock
from device.simulate import set_door
from hub import config as hub_config
from hub.alerting.alerts import list_alerts
from hub.service import Hub
from hub.accounts.users import add_user
from hub.web.data import station_overview
from tests.support.mosquitto import wait_for
from tests.support.stack import HOLDER, hub_db, query, write_hub_config, write_unit_config

pytestmark = pytest.mark.e2e


def _alerts(hub: Hub, rule: str) -> list[dict]:
    return [a for a in list_alerts(hub.engine) if a["rule"] == rule]


def test_an_unsynchronised_clock_and_one_ten_minutes_ahead_raise_their_alerts(broker, prefix, tmp_path):
    hub = Hub(hub_config.load(write_hub_config(tmp_path, broker.port, prefix)))
    hub.start()
    unsynced = StandinClock(offset_s=0.0, synced=False)
    ahead = StandinClock(offset_s=600.0, synced=True)
    agents = [Agent(unit_file.load(write_unit_config(tmp_path, broker.port, prefix, station)), clock=clock).start()
              for station, clock in (("cabinet-1", unsynced), ("cabinet-2", ahead))]
    db = hub_db(tmp_path / "hub.yaml")
    try:
        one = wait_for(lambda: _alerts(hub, "clock_unsynced"), timeout=15, what="clock_unsynced raised")
        skew = wait_for(lambda: _alerts(hub, "clock_skew"), timeout=15, what="clock_skew raised")
        assert [a["station"] for a in one] == ["cabinet-1"]
        assert [a["station"] for a in skew] == ["cabinet-2"]
        assert skew[0]["params"]["cause"] == "ahead" and 595 <= skew[0]["params"]["offset_s"] <= 605
        assert "600" in skew[0]["message"] or "599" in skew[0]["message"] or "601" in skew[0]["message"]

        # What they record is marked: by the station (not synchronised) and by the hub (ahead).
        for agent in agents:
            wait_for(lambda a=agent: a.call(lambda x: x.policy.version), timeout=15, what="policy at the station")
            agent.reader.tap(HOLDER)
        rows = wait_for(lambda: query(db, "SELECT station, data, time_flag FROM events WHERE kind='badge.granted'"
                                          " ORDER BY station") if len(query(
                            db, "SELECT 1 FROM events WHERE kind='badge.granted'")) == 2 else None,
                        timeout=15, what="both taps stored")
        (st1, data1, flag1), (st2, data2, flag2) = rows
        assert (st1, json.loads(data1).get("clock_unsynced"), flag1) == ("cabinet-1", True, None)
        assert (st2, "clock_unsynced" in json.loads(data2), flag2) == ("cabinet-2", False, "future")

        # The status page shows each station's offset and state.
        overview = {s["station"]: s for s in station_overview(hub.engine, hub.cfg)}
        assert overview["cabinet-1"]["clock_state"] == "unsynced"
        assert overview["cabinet-2"]["clock_state"] == "skewed" and overview["cabinet-2"]["clock_offset_s"] > 590
        client = hub.web.app.test_client()
        add_user(hub.engine, "sup-1", "correct horse 01", "supervisor", language="en")
        token = base64.b64encode(b"sup-1:correct horse 01").decode()
        page = client.get("/", headers={"Authorization": f"Basic {token}"}).get_data(as_text=True)
        assert 'data-state="unsynced"' in page and "Clock not synchronised" in page
        assert 'data-state="skewed"' in page and "Clock offset: +60" in page

        # Back in sync and on time: no new alerts; the page says so.
        unsynced.synced = True
        ahead.offset_s = 0.0
        wait_for(lambda: {s["station"]: s["clock_state"] for s in station_overview(hub.engine, hub.cfg)}
                 == {"cabinet-1": "ok", "cabinet-2": "ok", "cabinet-3": "unknown"}, timeout=15, what="clocks ok")
        assert len(_alerts(hub, "clock_unsynced")) == 1 and len(_alerts(hub, "clock_skew")) == 1
    finally:
        for agent in agents:
            agent.stop()
        hub.stop()


def test_a_snapshot_carries_the_station_clock_and_its_unsynchronised_flag(broker, prefix, tmp_path):
    hub = Hub(hub_config.load(write_hub_config(tmp_path, broker.port, prefix)))
    hub.start()
    clocks = {"cabinet-1": StandinClock(offset_s=0.0, synced=False), "cabinet-2": StandinClock(offset_s=600.0)}
    agents = {station: Agent(unit_file.load(write_unit_config(tmp_path, broker.port, prefix, station)),
                             clock=clock).start() for station, clock in clocks.items()}
    db = hub_db(tmp_path / "hub.yaml")
    try:
        for station, agent in agents.items():
            # Connected: its retained "online" status has reached the hub.
            wait_for(lambda st=station: query(db, "SELECT state FROM stations WHERE station=?", st) == [("online",)],
                     timeout=15, what=f"{station} online at the hub")
            set_door(agent, True)  # forced: a door.forced event and its snapshot
        rows = wait_for(lambda: (r := query(db, "SELECT station, taken_at, received_at, clock_unsynced FROM snapshots"
                                                " ORDER BY station")) and len(r) == 2 and r,
                        timeout=20, what="both snapshots stored")
        (st1, taken1, recv1, flag1), (st2, taken2, recv2, flag2) = rows
        ahead = (datetime.fromisoformat(taken2.replace("Z", "+00:00"))
                 - datetime.fromisoformat(recv2.replace("Z", "+00:00"))).total_seconds()
        behind = (datetime.fromisoformat(taken1.replace("Z", "+00:00"))
                  - datetime.fromisoformat(recv1.replace("Z", "+00:00"))).total_seconds()
        # The not-synchronised station says so on its photo; the other's photo has its clock's time.
        assert (st1, flag1) == ("cabinet-1", 1) and -30 < behind <= 1
        assert (st2, flag2) == ("cabinet-2", 0) and 570 < ahead <= 601
    finally:
        for agent in agents.values():
            agent.stop()
        hub.stop()
