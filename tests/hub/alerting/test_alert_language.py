"""The alert topic speaks the site's language: a forced door stored through a real Ingest, judged
by the rules and published through a real mosquitto reaches a subscriber with its sentence in
the site's language (Japanese by default, as the web page) and its time with the site's offset,
as the station's own events carry it."""
from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest

from kagiban.protocol import Alert, subscription
from tests.hub.helpers import SITE
from tests.support.alert_stack import Stack, ev
from tests.support.mosquitto import wait_for

FORCED_AT = "2025-04-01T09:00:00+09:00"


@pytest.mark.parametrize("site, message, zone", [
    ({}, "Key cabinet 1で扉がこじ開けられました（2025-04-01 09:00:00）。", "Asia/Tokyo"),
    ({"language": "en", "time_zone": "America/New_York"},
     "Door forced open at Key cabinet 1 at 2025-03-31 20:00:00.", "America/New_York"),
], ids=["default-ja-tokyo", "en-new-york"])
def test_an_alert_on_the_broker_is_in_the_sites_language_and_offset(broker, prefix, tmp_path, site, message, zone):
    got: list[bytes] = []
    ready: list[int] = []
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sup-{prefix}", protocol=mqtt.MQTTv5)
    listener.on_connect = lambda c, *_: c.subscribe(subscription(prefix, "alert"), qos=1)
    listener.on_subscribe = lambda *_: ready.append(1)
    listener.on_message = lambda _c, _u, msg: got.append(msg.payload)
    listener.connect("127.0.0.1", broker.port)
    listener.loop_start()
    hub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hub-{prefix}", protocol=mqtt.MQTTv5)
    hub.connect("127.0.0.1", broker.port)
    hub.loop_start()
    stack = Stack(tmp_path, broker={"prefix": prefix}, sites={SITE: {"name": "Ward A", **site}})
    try:
        wait_for(lambda: ready, timeout=10, what="subscribed to alerts")
        stack.start_rules(publish=lambda t, p: hub.publish(t, p, qos=1).wait_for_publish(5))
        stack.feed(ev("cabinet-1", 1, "door.forced", FORCED_AT))
        wait_for(lambda: got, timeout=10, what="alert on the broker")
        alert = Alert.model_validate_json(got[0])
        assert (alert.rule, alert.message) == ("forced", message)
        # Raised now; on the wire with the site's offset (not UTC "Z"), as the events carry it.
        wire_at = re.search(r'"at":"([^"]+)"', got[0].decode()).group(1)
        offset = alert.at.astimezone(ZoneInfo(zone)).isoformat()[-6:]
        assert wire_at.endswith(offset) and not wire_at.endswith("Z") and offset != "+00:00"
        # The stored row keeps the English sentence for the hub's log.
        assert stack.alerts("forced")[0]["message"].startswith("Door forced open at Key cabinet 1")
    finally:
        stack.close()
        for client in (listener, hub):
            client.disconnect()
            client.loop_stop()
