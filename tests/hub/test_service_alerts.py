"""The whole hub: a station publishes a forced door over real mosquitto, and the hub stores an
alert, announces it on the broker's alert topic and the live page, and notifies the site's
supervisor."""
from __future__ import annotations

import json
import queue

import paho.mqtt.client as mqtt
import pytest

from hub.alerting.alerts import list_alerts
from hub.store.schema import alert_deliveries
from kagiban.configfile import ConfigError
from kagiban.protocol import Alert, subscription
from tests.hub.helpers import SITE, encode, event
from tests.support.sinks import HttpSink
from tests.support.mosquitto import wait_for


@pytest.fixture
def http():
    sink = HttpSink()
    yield sink
    sink.close()


@pytest.fixture
def alert_listener(broker, prefix):
    """A supervisor's MQTT client subscribed to every alert under the test's prefix."""
    got: list[mqtt.MQTTMessage] = []
    ready: list[int] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sup-{prefix}", protocol=mqtt.MQTTv5)
    client.on_connect = lambda c, *_: c.subscribe(subscription(prefix, "alert"), qos=1)
    client.on_subscribe = lambda *_: ready.append(1)
    client.on_message = lambda _c, _u, msg: got.append(msg)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    wait_for(lambda: ready, timeout=10, what="listener subscribed to alerts")
    yield got
    client.disconnect()
    client.loop_stop()


def test_a_forced_door_becomes_a_stored_published_live_and_notified_alert(
        start_hub, station, alert_listener, http, prefix):
    hub = start_hub(
        stations=[{"id": "cabinet-1", "site": SITE, "kind": "cabinet", "name": "Key cabinet 1"}],
        sites={SITE: {"name": "Ward A", "supervisors": [
            {"url": f"json://127.0.0.1:{http.port}/", "label": "section chief"}]}},
    )
    live = hub.bus.subscribe()
    st = station("cabinet-1")
    body = event("cabinet-1", 1, kind="door.forced", at="2025-04-01T10:00:00+09:00", badge=None,
                 person=None, data={"policy_version": 1})
    st.publish("event", encode(body))

    # Stored.
    rows = wait_for(lambda: list_alerts(hub.engine), timeout=10, what="alert stored")
    [alert] = rows
    assert (alert["rule"], alert["severity"], alert["event_id"]) == ("forced", "critical", body["id"])

    # On the broker, QoS 1, not retained.
    wait_for(lambda: alert_listener, timeout=10, what="alert on the broker")
    msg = alert_listener[0]
    assert msg.topic == f"{prefix}/{SITE}/cabinet-1/alert" and msg.qos == 1 and not msg.retain
    published = Alert.model_validate_json(msg.payload)
    assert (published.id, published.rule, published.event_id) == (alert["id"], "forced", body["id"])

    # On the live page.
    def next_alert():
        while True:
            try:
                kind, text = live.get(timeout=0.1)
            except queue.Empty:
                return None
            if kind == "alert":
                return json.loads(text)
    live_alert = wait_for(next_alert, timeout=10, what="alert on the live bus")
    assert live_alert["id"] == alert["id"] and live_alert["params"]["station_name"] == "Key cabinet 1"

    # To the supervisor.
    wait_for(lambda: http.bodies, timeout=10, what="supervisor notified")
    assert "Key cabinet 1" in http.bodies[0]["title"]
    with hub.engine.connect() as conn:
        [delivery] = conn.execute(alert_deliveries.select()).all()
    assert delivery.target == "section chief"


def test_a_hub_with_an_unreadable_supervisor_secret_does_not_start(start_hub, monkeypatch):
    monkeypatch.delenv("KAGIBAN_NO_SUCH_URL", raising=False)
    with pytest.raises(ConfigError, match=r"supervisors\[1\]"):
        start_hub(sites={SITE: {"supervisors": [{"url_env": "KAGIBAN_NO_SUCH_URL"}]}})
