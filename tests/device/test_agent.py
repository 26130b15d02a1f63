"""The agent with mock pins, the stand-in reader and camera and a real mosquitto (no hub):
what it records, what it says on the broker, and how it takes its policy."""
import json
import time
from datetime import datetime, timezone

import pytest

from device import unit_file
from device.agent import Agent
from device.simulate import set_door
from kagiban import protocol
from tests.support.mosquitto import wait_for
from tests.support.watcher import Watcher
from kagiban import signing
from tests.support.stack import HOLDER, UNKNOWN, sign_policy, write_unit_config


@pytest.fixture
def agent_and_watcher(broker, prefix, tmp_path):
    w = Watcher(broker.port, f"{prefix}/#")
    agent = Agent(unit_file.load(write_unit_config(tmp_path, broker.port, prefix, debounce_ms=50))).start()
    yield agent, w, prefix
    agent.stop()
    w.close()


def test_status_online_retained_then_stopped_on_a_clean_stop(agent_and_watcher):
    agent, w, prefix = agent_and_watcher
    status = f"{prefix}/ward-a/cabinet-1/status"
    wait_for(lambda: any(json.loads(p)["state"] == "online" for p in w.on(status)), timeout=10, what="online")
    agent.stop()
    wait_for(lambda: json.loads(w.on(status)[-1])["state"] == "stopped", timeout=10, what="stopped")


def test_heartbeat_reports_outbox_and_policy(agent_and_watcher):
    agent, w, prefix = agent_and_watcher
    hb_topic = f"{prefix}/ward-a/cabinet-1/heartbeat"
    raw = wait_for(lambda: w.on(hb_topic), timeout=10, what="heartbeat")[-1]
    hb = protocol.Heartbeat.model_validate_json(raw)
    assert hb.outbox_depth >= 1  # station.started is waiting for a hub that is not there
    assert hb.door == "closed" and hb.locked is True and hb.policy_version is None


def test_bouncing_reed_switch_records_one_opening(agent_and_watcher):
    agent, w, prefix = agent_and_watcher
    pin = agent.pin_factory.pin(17)
    for i in range(11):  # contact bounce: bounce_time does nothing on mock pins
        (pin.drive_high if i % 2 == 0 else pin.drive_low)()
    wait_for(lambda: "door.forced" in [e.kind for e in agent.call(lambda a: a.outbox.events())],
             timeout=5, what="one opening")
    time.sleep(0.2)
    kinds = [e.kind for e in agent.call(lambda a: a.outbox.events())]
    assert kinds.count("door.forced") == 1 and "door.closed" not in kinds


def test_retained_policy_is_taken_and_used(agent_and_watcher, tmp_path):
    agent, w, prefix = agent_and_watcher
    pol = protocol.Policy(
        version=3,
        issued_at=datetime.now(timezone.utc),
        site="ward-a",
        station="cabinet-1",
        badges={HOLDER: protocol.PolicyEntry(person="S001", decision="allow", reason="designated_holder",
                                             after_hours="allow")},
    )
    w.publish(f"{prefix}/ward-a/cabinet-1/policy", sign_policy(tmp_path, pol), retain=True)
    wait_for(lambda: agent.call(lambda a: a.policy.version) == 3, timeout=10, what="policy v3")
    agent.reader.tap(HOLDER)
    wait_for(lambda: agent.pin_factory.pin(27).state == 1, timeout=5, what="unlocked")
    set_door(agent, True)
    time.sleep(0.2)  # longer than the 50 ms debounce, or the opening never happened
    set_door(agent, False)
    wait_for(lambda: "key.used" in [e.kind for e in agent.call(lambda a: a.outbox.events())],
             timeout=5, what="key use recorded")
    events = agent.call(lambda a: a.outbox.events())
    assert all(e.data.get("policy_version") == 3 for e in events if e.kind != "station.started")
    granted = [e for e in events if e.kind == "badge.granted"]
    assert granted[0].data["decision"] == "allow" and granted[0].data["reason"] == "designated_holder"


def _policy_events(agent):
    return [e for e in agent.call(lambda a: a.outbox.events()) if e.kind == "policy.rejected"]


def test_refused_policy_is_reported_once_per_version_and_the_good_one_stays(agent_and_watcher, tmp_path):
    agent, w, prefix = agent_and_watcher
    policy_topic = f"{prefix}/ward-a/cabinet-1/policy"
    good = protocol.Policy(version=10, issued_at=datetime.now(timezone.utc), site="ward-a", station="cabinet-1",
                           badges={HOLDER: protocol.PolicyEntry(decision="allow", after_hours="allow")})
    w.publish(policy_topic, sign_policy(tmp_path, good), retain=True)
    wait_for(lambda: agent.call(lambda a: a.policy.version) == 10, timeout=10, what="policy v10")
    # Anyone who can publish on the topic could otherwise open the cabinet for every badge.
    forged = good.model_copy(update={"version": 11, "badges": {
        UNKNOWN: protocol.PolicyEntry(decision="allow", after_hours="allow")}})
    forged_payload = signing.sign(forged, signing.generate_private_key())
    w.publish(policy_topic, forged_payload, retain=True)
    rejected = wait_for(lambda: _policy_events(agent), timeout=10, what="policy.rejected")
    assert rejected[0].data["reason"] == "unknown_key"
    assert rejected[0].data["offered_version"] == 11 and rejected[0].data["held_version"] == 10
    # The same refused policy again (as after a reconnect) adds no second event.
    w.publish(policy_topic, forged_payload, retain=True)
    w.publish(policy_topic, protocol.dumps(forged.model_copy(update={"version": 12})), retain=True)
    wait_for(lambda: len(_policy_events(agent)) == 2, timeout=10, what="the unsigned one reported")
    time.sleep(0.3)
    assert [e.data["reason"] for e in _policy_events(agent)] == ["unknown_key", "unsigned"]
    assert agent.call(lambda a: a.policy.version) == 10
    agent.reader.tap(UNKNOWN)
    denied = wait_for(lambda: [e for e in agent.call(lambda a: a.outbox.events()) if e.kind == "badge.denied"],
                      timeout=5, what="the forged badge denied")
    assert denied[0].data["reason"] == "unknown" and denied[0].data["decision"] == "deny"


def test_events_are_sent_and_resent_until_acked(agent_and_watcher):
    agent, w, prefix = agent_and_watcher
    ev_topic = f"{prefix}/ward-a/cabinet-1/event"
    first = wait_for(lambda: w.on(ev_topic), timeout=10, what="station.started sent")[0]
    ev = protocol.Event.model_validate_json(first)
    assert ev.kind == "station.started" and ev.seq == 1
    # No hub: after ack_timeout (2 s) the same event is sent again, byte for byte.
    wait_for(lambda: len(w.on(ev_topic)) >= 2, timeout=10, what="resend")
    assert w.on(ev_topic)[1] == first
    assert ev.incarnation == agent.outbox.incarnation is not None
    # An ack for seq 1 of another incarnation (a replaced outbox) deletes nothing here.
    other = protocol.Ack(station="cabinet-1", seqs=[(1, 1)], incarnation="01900000-0000-7000-8000-000000000000")
    w.publish(f"{prefix}/ward-a/cabinet-1/ack", protocol.dumps(other))
    time.sleep(0.3)
    assert agent.call(lambda a: a.outbox.depth()) == 1
    ack = protocol.Ack(station="cabinet-1", seqs=[(1, 1)], incarnation=ev.incarnation)
    w.publish(f"{prefix}/ward-a/cabinet-1/ack", protocol.dumps(ack))
    wait_for(lambda: agent.call(lambda a: a.outbox.depth()) == 0, timeout=5, what="acked")


def test_an_expired_policy_flags_every_grant_and_the_heartbeat_says_so(broker, prefix, tmp_path):
    from datetime import timedelta

    import yaml

    unit = write_unit_config(tmp_path, broker.port, prefix, debounce_ms=50)
    cfg = yaml.safe_load(unit.read_text())
    cfg["policy"]["max_age_h"] = 1  # a policy issued two hours ago is too old to hold
    unit.write_text(yaml.safe_dump(cfg))
    issued = datetime.now(timezone.utc) - timedelta(hours=2)
    old = protocol.Policy(version=int(issued.timestamp() * 1000), issued_at=issued, site="ward-a",
                          station="cabinet-1", badges={HOLDER: protocol.PolicyEntry(
                              person="S001", decision="allow", reason="designated_holder", after_hours="allow")})
    data = tmp_path / "cabinet-1-data"
    data.mkdir(exist_ok=True)
    (data / "policy.json").write_bytes(sign_policy(tmp_path, old))  # held from before
    w = Watcher(broker.port, f"{prefix}/#")
    agent = Agent(unit_file.load(unit)).start()
    try:
        hb_topic = f"{prefix}/ward-a/cabinet-1/heartbeat"
        raw = wait_for(lambda: w.on(hb_topic), timeout=10, what="heartbeat")[-1]
        assert protocol.Heartbeat.model_validate_json(raw).policy_expired is True
        agent.reader.tap(HOLDER)
        granted = wait_for(lambda: [e for e in agent.call(lambda a: a.outbox.events()) if e.kind == "badge.granted"],
                           timeout=5, what="the grant, flagged")
        assert granted[0].data["decision"] == "allow_flag" and granted[0].data["reason"] == "policy_expired"
        assert granted[0].data["policy_expired"] is True
        # The same policy offered again is refused as too old, and the heartbeat names why.
        w.publish(f"{prefix}/ward-a/cabinet-1/policy", sign_policy(tmp_path, old.model_copy(
            update={"version": old.version + 1})), retain=True)
        rejected = wait_for(lambda: _policy_events(agent), timeout=10, what="policy.rejected")
        assert rejected[0].data["reason"] == "issued_too_old"
        wait_for(lambda: protocol.Heartbeat.model_validate_json(w.on(hb_topic)[-1]).policy_refused == "issued_too_old",
                 timeout=10, what="the refusal in a heartbeat")
    finally:
        agent.stop()
        w.close()
