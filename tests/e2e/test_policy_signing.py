"""Signed policies end to end: a real hub signs, a real agent over a real mosquitto verifies,
refuses forged and stale policies (and tells the hub), and keeps deciding from its cached
policy with the hub stopped, time rules included."""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
import pytest

from device import unit_file
from device.agent import Agent
from hub import config as hub_config
from hub.registry.policy import Compiled
from hub.service import Hub
from kagiban import signing
from kagiban.protocol import PolicyEntry
from tests.support.mosquitto import wait_for
from tests.support.stack import (
    HOLDER,
    STANDIN,
    UNKNOWN,
    hub_db,
    query,
    sign_policy,
    write_hub_config,
    write_unit_config,
)

pytestmark = pytest.mark.e2e
LOCK_PIN = 27
SITE = "ward-a"


@pytest.fixture
def stack(broker, prefix, tmp_path):
    """A running hub and one running cabinet agent with its signed policy received."""
    hub = Hub(hub_config.load(write_hub_config(tmp_path, broker.port, prefix)))
    hub.start()
    agent = Agent(unit_file.load(write_unit_config(tmp_path, broker.port, prefix))).start()
    wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=15, what="policy at the station")
    wait_for(hub.connected.is_set, timeout=10, what="hub subscribed")
    agents = [agent]
    yield hub, agent, agents, hub_db(tmp_path / "hub.yaml")
    for a in agents:
        a.stop()
    hub.stop()


def publish_retained(port: int, topic_name: str, payload: bytes) -> None:
    """What an intruder with publish rights on the policy topic would do: a plain client."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"x-{uuid.uuid4().hex[:8]}",
                    protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        c.publish(topic_name, payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()


def stored_rejections(db) -> list[dict]:
    rows = query(db, "SELECT data FROM events WHERE kind='policy.rejected' ORDER BY row_no")
    return [json.loads(r[0]) for r in rows]


def lock_energised(agent) -> bool:
    return agent.pin_factory.pin(LOCK_PIN).state == 1


def outbox(agent, kind: str) -> list:
    return [e for e in agent.call(lambda a: a.outbox.events()) if e.kind == kind]


def test_the_hubs_signed_policy_is_used_at_the_station(stack, tmp_path):
    hub, agent, _agents, db = stack
    cached = (tmp_path / "cabinet-1-data" / "policy.json").read_bytes()
    # What the station keeps is the hub's signed envelope, verifiable with the configured key.
    public = signing.public_key_b64(signing.load_private_key(tmp_path / "policy-signing.key"))
    assert signing.verify(cached, public).version == agent.call(lambda a: a.policy.version)
    assert json.loads(cached)["key_id"] == hub.policies.key_id
    agent.reader.tap(HOLDER)
    wait_for(lambda: lock_energised(agent), timeout=5, what="unlocked by the signed policy")
    rows = wait_for(lambda: query(db, "SELECT person, data FROM events WHERE kind='badge.granted'"),
                    timeout=10, what="the grant stored")
    data = json.loads(rows[0][1])
    assert rows[0][0] == "S001" and data["decision"] == "allow" and data["reason"] == "allowed"


def test_forged_and_stale_policies_are_refused_and_reported_to_the_hub(stack, broker, prefix, tmp_path):
    hub, agent, _agents, db = stack
    held = agent.call(lambda a: a.policy.version)
    policy_topic = f"{prefix}/{SITE}/cabinet-1/policy"
    genuine = json.loads((tmp_path / "cabinet-1-data" / "policy.json").read_bytes())["policy"]

    # Forged: everyone allowed, a higher version, signed with a key the station does not know.
    forged = dict(genuine, version=held + 1000,
                  badges={UNKNOWN: PolicyEntry(decision="allow", after_hours="allow").model_dump(mode="json")})
    publish_retained(broker.port, policy_topic, signing.sign(forged, signing.generate_private_key()))
    wait_for(lambda: [d for d in stored_rejections(db) if d["offered_version"] == held + 1000],
             timeout=15, what="policy.rejected for the forged policy stored at the hub")
    [first] = stored_rejections(db)
    assert first["reason"] == "unknown_key" and first["held_version"] == held

    # Forged again, claiming the hub's key id: the signature gives it away.
    envelope = json.loads(signing.sign(dict(forged, version=held + 2000), signing.generate_private_key()))
    envelope["key_id"] = hub.policies.key_id
    publish_retained(broker.port, policy_topic, json.dumps(envelope).encode())

    # Stale: genuinely signed by the hub's key, but older than what the station holds.
    stale = dict(genuine, version=held - 1)
    publish_retained(broker.port, policy_topic, sign_policy(tmp_path, stale))
    wait_for(lambda: len(stored_rejections(db)) == 3, timeout=15, what="all three refusals stored")
    assert [(d["reason"], d["offered_version"]) for d in stored_rejections(db)] == [
        ("unknown_key", held + 1000), ("bad_signature", held + 2000), ("older_version", held - 1)]

    assert agent.call(lambda a: a.policy.version) == held
    agent.reader.tap(UNKNOWN)
    wait_for(lambda: outbox(agent, "badge.denied") or query(db, "SELECT 1 FROM events WHERE kind='badge.denied'"),
             timeout=5, what="the forged policy's badge denied")
    assert not lock_energised(agent)
    # The hub puts its own policy back on the topic at its next publication (e.g. a reconnect).
    hub.policies.request_publish()
    time.sleep(1.0)
    assert len(stored_rejections(db)) == 3  # the genuine, same version again: accepted silently


def test_with_the_hub_stopped_the_cached_policy_decides_time_rules_included(stack, broker, prefix, tmp_path):
    hub, agent, agents, db = stack
    until = datetime.now(timezone.utc) + timedelta(seconds=3)

    def compile(now):
        return {"cabinet-1": Compiled(site=SITE, badges={
            HOLDER: PolicyEntry(person="S001", decision="allow", reason="designated_holder"),
            STANDIN: PolicyEntry(person="S002", decision="allow", reason="stand_in",
                                 valid_until=until, expiry_reason="training_expired"),
        })}

    before = agent.call(lambda a: a.policy.version)
    hub.policies.use_compile(compile)  # as the registry does; it asks for a recompile
    wait_for(lambda: agent.call(lambda a: a.policy.version) > before, timeout=15, what="the new policy")
    agent.reader.tap(STANDIN)
    wait_for(lambda: outbox(agent, "badge.granted") or query(db, "SELECT 1 FROM events WHERE kind='badge.granted'"),
             timeout=5, what="the stand-in granted while trained")

    hub.stop()
    time.sleep(max(0.0, (until - datetime.now(timezone.utc)).total_seconds()) + 0.5)
    agent.reader.tap(STANDIN)
    denied = wait_for(lambda: outbox(agent, "badge.denied"), timeout=5, what="the stand-in denied")
    assert denied[-1].person == "S002"
    assert denied[-1].data["reason"] == "training_expired" and denied[-1].data["decision"] == "deny"

    # A restart with the hub still down: the policy on disk is verified again and used.
    version = agent.call(lambda a: a.policy.version)
    agent.stop()
    again = Agent(unit_file.load(write_unit_config(tmp_path, broker.port, prefix))).start()
    agents.append(again)
    assert again.call(lambda a: a.policy.version) == version
    again.reader.tap(HOLDER)
    wait_for(lambda: lock_energised(again), timeout=5, what="unlocked from the cached policy after restart")
    again.reader.tap(STANDIN)
    wait_for(lambda: [e for e in outbox(again, "badge.denied") if e.data["reason"] == "training_expired"],
             timeout=5, what="still expired after restart")
