"""The registry as the policy source, end to end: a real hub (no staff file) compiles and signs
each station's policy from people, badges, trainings and designations; a real agent over a
real mosquitto decides from it. A trained person who is not designated is let in, flagged,
and the supervisors are told (stored alert, MQTT alert topic, their notification target); an
expired training is refused at the station; a forged policy raises policy_rejected."""
from __future__ import annotations

import json
import uuid

import paho.mqtt.client as mqtt
import pytest
import yaml

from hub.alerting.alerts import list_alerts
from kagiban import signing
from kagiban.protocol import PolicyEntry
from tests.support.sinks import HttpSink
from tests.support.mosquitto import wait_for
from tests.support.registry_stack import CLERK, EXPIRED, running_cabinet, write_registry_hub_config
from tests.support.stack import query

pytestmark = pytest.mark.e2e
LOCK_PIN = 27
SITE = "ward-a"


@pytest.fixture
def sink():
    s = HttpSink()
    yield s
    s.close()


@pytest.fixture
def stack(broker, prefix, tmp_path, sink):
    """A registry-seeded hub with a supervisor target, and cabinet-1 with its policy."""
    path = write_registry_hub_config(tmp_path, broker.port, prefix)
    body = yaml.safe_load(path.read_text())
    body["sites"] = {SITE: {"name": "Ward A", "supervisors": [
        {"url": f"json://127.0.0.1:{sink.port}/hook", "label": "supervisors"}]}}
    path.write_text(yaml.safe_dump(body))
    with running_cabinet(path, broker.port, prefix, tmp_path) as running:
        yield running


class AlertWatcher:
    """A plain MQTT client on the station's alert topic, as a supervisor's app would be."""

    def __init__(self, port: int, topic_name: str):
        self.received: list[dict] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"w-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        subscribed = []
        self.client.on_message = lambda _c, _u, msg: self.received.append(json.loads(msg.payload))
        self.client.on_subscribe = lambda *_args: subscribed.append(True)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(topic_name, qos=1)
        wait_for(lambda: subscribed, timeout=5, what="alert topic subscribed")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def lock_energised(agent) -> bool:
    return agent.pin_factory.pin(LOCK_PIN).state == 1


def outbox(agent, kind: str) -> list:
    return [e for e in agent.call(lambda a: a.outbox.events()) if e.kind == kind]


def test_a_non_designated_person_is_let_in_flagged_and_the_supervisors_alerted(stack, broker, prefix, sink):
    hub, agent, db = stack
    entry = agent.call(lambda a: a.policy.current.badges[CLERK])
    assert (entry.person, entry.decision, entry.reason) == ("S003", "allow_flag", "not_designated")
    watcher = AlertWatcher(broker.port, f"{prefix}/{SITE}/cabinet-1/alert")
    try:
        agent.reader.tap(CLERK)
        wait_for(lambda: lock_energised(agent), timeout=5, what="unlocked for the trained clerk")
        rows = wait_for(lambda: query(db, "SELECT person, data FROM events WHERE kind='badge.granted'"),
                        timeout=10, what="the grant stored at the hub")
        person, data = rows[0][0], json.loads(rows[0][1])
        assert person == "S003" and data["flagged"] is True and data["reason"] == "not_designated"

        flagged = wait_for(lambda: [a for a in list_alerts(hub.engine) if a["rule"] == "flagged_use"],
                           timeout=10, what="the flagged_use alert")
        [alert] = flagged
        assert alert["severity"] == "warning" and alert["state"] == "open"
        assert alert["params"]["person"] == "S003" and alert["params"]["reason"] == "not_designated"
        wait_for(lambda: [m for m in watcher.received if m["rule"] == "flagged_use"], timeout=10,
                 what="the alert on the station's MQTT alert topic")
        posted = wait_for(lambda: [b for b in sink.bodies if "S003" in b.get("message", "")], timeout=15,
                          what="the supervisors' notification")
        assert "指定外の職員" in posted[0]["message"] and "Use by a non-designated person" in posted[0]["title"]
    finally:
        watcher.close()


def test_an_expired_training_is_refused_at_the_station(stack):
    hub, agent, db = stack
    agent.reader.tap(EXPIRED)
    denied = wait_for(lambda: outbox(agent, "badge.denied")
                      or [r for r in query(db, "SELECT person, data FROM events WHERE kind='badge.denied'")],
                      timeout=5, what="the expired training refused")
    assert not lock_energised(agent)
    rows = wait_for(lambda: query(db, "SELECT person, data FROM events WHERE kind='badge.denied'"), timeout=10,
                    what="the refusal stored")
    assert rows[0][0] == "S004" and json.loads(rows[0][1])["reason"] == "training_expired"
    assert denied
    alert = wait_for(lambda: [a for a in list_alerts(hub.engine) if a["rule"] == "denied"], timeout=10,
                     what="the denied alert")[0]
    assert alert["params"]["reason"] == "training_expired"


def test_a_forged_policy_raises_policy_rejected(stack, broker, prefix, tmp_path):
    hub, agent, _db = stack
    held = agent.call(lambda a: a.policy.version)
    genuine = json.loads((tmp_path / "cabinet-1-data" / "policy.json").read_bytes())["policy"]
    forged = dict(genuine, version=held + 1000,
                  badges={EXPIRED: PolicyEntry(decision="allow", after_hours="allow").model_dump(mode="json")})
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"x-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        c.publish(f"{prefix}/{SITE}/cabinet-1/policy", signing.sign(forged, signing.generate_private_key()),
                  qos=1, retain=True).wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()
    rejected = wait_for(lambda: [a for a in list_alerts(hub.engine) if a["rule"] == "policy_rejected"],
                        timeout=15, what="the policy_rejected alert")
    alert = rejected[0]
    # Someone other than the hub published on the station's policy topic: critical.
    assert alert["severity"] == "critical"
    assert (alert["params"]["reason"], alert["params"]["offered_version"], alert["params"]["held_version"]) == (
        "unknown_key", held + 1000, held)
    assert "ハブ以外の鍵で署名" in _ja(alert)
    assert agent.call(lambda a: a.policy.version) == held


def _ja(alert: dict) -> str:
    from hub.alerting.wording import alert_text

    return alert_text(alert["rule"], alert["params"], "ja")
