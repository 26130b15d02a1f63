"""Taps through the whole agent (mock pins, stand-in reader and outputs, a real mosquitto): the
same badge again within the unit's repeat window is answered with its feedback, and recorded
once; the nfcpy-style id forms people copy reach the logic as the one badge id."""
import time

import pytest
import yaml

from device import unit_file
from device.agent import Agent
from device.outputs import StandInOutputs
from tests.support.mosquitto import wait_for
from tests.support.stack import UNKNOWN, write_unit_config


@pytest.fixture
def agent(broker, prefix, tmp_path):
    path = write_unit_config(tmp_path, broker.port, prefix)
    unit = yaml.safe_load(path.read_text())
    unit["reader"]["repeat_s"] = 2.0  # as a real reader has it by default
    path.write_text(yaml.safe_dump(unit))
    outputs = StandInOutputs()
    a = Agent(unit_file.load(path), outputs=outputs).start()
    yield a, outputs
    a.stop()


def denied(agent) -> list:
    return [e for e in agent.call(lambda a: a.outbox.events()) if e.kind == "badge.denied"]


def test_a_retap_within_the_repeat_window_gets_red_again_and_one_event(agent):
    a, outputs = agent
    a.reader.tap(UNKNOWN)
    wait_for(lambda: denied(a), timeout=5, what="the refusal recorded")
    a.reader.tap(UNKNOWN.lower())  # the same card again, a moment later
    wait_for(lambda: outputs.calls.count("denied") == 2, timeout=5, what="red light and beeps again")
    time.sleep(0.2)
    assert len(denied(a)) == 1
    assert a.decisions == 2  # both taps reached the station
