"""A cabinet's purpose button through the whole agent (mock pins, the stand-in reader, a real
mosquitto, no hub): after a key use, pressing the button wired for a work code records
``key.purpose`` naming that use."""
import time
from datetime import datetime, timezone

import yaml

from device import unit_file
from device.agent import Agent
from device.simulate import set_door, set_input
from kagiban import protocol
from tests.support.mosquitto import wait_for
from tests.support.stack import HOLDER, sign_policy, write_unit_config
from tests.support.watcher import Watcher

PURPOSE_PIN = 5


def outbox(agent):
    return agent.call(lambda a: a.outbox.events())


def test_a_purpose_button_after_a_use_records_its_work(broker, prefix, tmp_path):
    path = write_unit_config(tmp_path, broker.port, prefix, debounce_ms=50)
    unit = yaml.safe_load(path.read_text())
    unit["pins"]["purpose_buttons"] = {"register": PURPOSE_PIN}
    path.write_text(yaml.safe_dump(unit))
    watcher = Watcher(broker.port, f"{prefix}/#")
    agent = Agent(unit_file.load(path)).start()
    try:
        policy = protocol.Policy(
            version=1, issued_at=datetime.now(timezone.utc), site="ward-a", station="cabinet-1",
            badges={HOLDER: protocol.PolicyEntry(person="S001", decision="allow", reason="designated_holder",
                                                 after_hours="allow")})
        watcher.publish(f"{prefix}/ward-a/cabinet-1/policy", sign_policy(tmp_path, policy), retain=True)
        wait_for(lambda: agent.call(lambda a: a.policy.version) == 1, timeout=10, what="the policy")
        agent.reader.tap(HOLDER)
        wait_for(lambda: agent.pin_factory.pin(27).state == 1, timeout=5, what="unlocked")
        set_door(agent, True)
        time.sleep(0.2)  # longer than the debounce
        set_door(agent, False)
        wait_for(lambda: "key.used" in [e.kind for e in outbox(agent)], timeout=5, what="the key use")
        assert agent.pin_factory.pin(PURPOSE_PIN).state == 1  # released: pulled up
        set_input(agent, "purpose:register", True)  # pressed: the button pulls its pin to ground
        assert agent.pin_factory.pin(PURPOSE_PIN).state == 0
        time.sleep(0.2)  # longer than the debounce
        set_input(agent, "purpose:register", False)
        wait_for(lambda: "key.purpose" in [e.kind for e in outbox(agent)], timeout=5, what="the purpose")
        time.sleep(0.2)
        events = outbox(agent)
        [used] = [e for e in events if e.kind == "key.used"]
        [purpose] = [e for e in events if e.kind == "key.purpose"]
        assert purpose.data["purpose"] == "register"
        assert purpose.data["unlocked_at"] == used.data["unlocked_at"]
        assert (purpose.badge, purpose.person) == (HOLDER, "S001")
    finally:
        agent.stop()
        watcher.close()
