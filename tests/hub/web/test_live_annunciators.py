"""The status page's annunciator block over the live stream (a real waitress server): when a
site's alarm changes (an alert raised, hub.alerting.alarm) or an annunciator reports its lamp,
the open page is sent the block drawn again, in the reader's language."""
from __future__ import annotations

import pytest

from hub.alerting.alarm import SiteAlarms
from hub.alerting.alerts import AlertCenter
from hub.config import load
from tests.hub.helpers import heartbeat
from tests.support.mosquitto import wait_for
from tests.support.web_app import STATIONS, Stream, store, write_config


@pytest.fixture
def cfg(tmp_path):
    return load(write_config(tmp_path / "hub", stations=[
        *STATIONS, {"id": "annunciator-1", "site": "ward-a", "kind": "annunciator", "name": "事務室の警報灯"}]))


def test_the_annunciator_block_follows_the_site_alarm_and_the_units_lamp(server, users, bus, engine, cfg):
    beat = heartbeat("annunciator-1")
    beat.update(kind="annunciator", signal="off")
    store(engine, [("heartbeat", beat)])
    alarms = SiteAlarms(engine, cfg, publish=lambda _topic, _payload: None, bus=bus)
    center = AlertCenter(engine, cfg, bus=bus, alarms=alarms)
    stream = Stream(server.port, users["supervisor"])
    try:
        wait_for(lambda: bus.subscribers == 1, timeout=5, what="the stream subscribed")
        center.raise_alert(site="ward-a", station="cabinet-1", rule="forced", severity="critical",
                           message="Door forced", params={"station": "cabinet-1"})
        msg = stream.wait_for("site_alarm", timeout=2)
        assert (msg["site"], msg["count"]) == ("ward-a", 1)
        row = msg["annunciators_html"].split('data-station="annunciator-1"')[1].split("</tr>")[0]
        assert '<td class="num">1</td>' in row and "消灯" in row  # the hub's count; the lamp as last reported
        # The unit's next heartbeat says it sounds: the block is drawn again with it.
        # (stored first, as the hub does before it tells the page)
        store(engine, [("heartbeat", {**beat, "signal": "sounding"})])
        bus.publish("heartbeat", {**beat, "signal": "sounding"})
        msg = stream.wait_for("heartbeat", timeout=2)
        assert "鳴動中" in msg["annunciators_html"] and '<td class="num">1</td>' in msg["annunciators_html"]
    finally:
        stream.close()
