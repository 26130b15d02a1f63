"""A station whose peripherals fail keeps working: a camera that is missing, raises or hangs,
pins that cannot be opened. What it records, what its heartbeat says, and how fast it stops
(the real ``kagiban device`` process, stopped by SIGTERM while a capture hangs)."""
from __future__ import annotations

import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import pytest
import yaml

from device import unit_file
from device.agent import Agent
from device.simulate import set_door
from kagiban import protocol
from tests.support.mosquitto import wait_for
from tests.support.stack import HOLDER, sign_policy, spawn, write_unit_config
from tests.support.watcher import Watcher

LOCK_PIN = 27


def _unit(tmp_path: Path, port: int, prefix: str, camera: dict | None = None, **timings) -> Path:
    path = write_unit_config(tmp_path, port, prefix, **timings)
    cfg = yaml.safe_load(path.read_text())
    if camera is not None:
        cfg["camera"].update(camera)
    path.write_text(yaml.safe_dump(cfg))
    return path


def _events(agent, kind: str | None = None) -> list[protocol.Event]:
    return [e for e in agent.call(lambda a: a.outbox.events()) if kind is None or e.kind == kind]


def _last_heartbeat(w: Watcher, prefix: str) -> protocol.Heartbeat | None:
    got = w.on(f"{prefix}/ward-a/cabinet-1/heartbeat")
    return protocol.Heartbeat.model_validate_json(got[-1]) if got else None


def _allow_holder(w: Watcher, prefix: str, tmp_path: Path) -> None:
    pol = protocol.Policy(version=1, issued_at=datetime.now(timezone.utc), site="ward-a", station="cabinet-1",
                          badges={HOLDER: protocol.PolicyEntry(person="S001", decision="allow", after_hours="allow")})
    w.publish(f"{prefix}/ward-a/cabinet-1/policy", sign_policy(tmp_path, pol), retain=True)


@pytest.fixture
def running(broker, prefix, tmp_path):
    """Start an agent (from a unit file's camera section, or with a given camera) and a watcher."""
    made: list[Agent] = []
    w = Watcher(broker.port, f"{prefix}/#")

    def start(camera_section: dict | None = None, camera=None, **timings) -> Agent:
        cfg = unit_file.load(_unit(tmp_path, broker.port, prefix, camera_section, **timings))
        agent = Agent(cfg, camera=camera).start()
        made.append(agent)
        return agent

    yield start, w
    for agent in made:
        agent.stop()
    w.close()


def test_a_missing_camera_leaves_a_station_that_grants_and_reports_a_forced_door(running, prefix, tmp_path):
    start, w = running
    agent = start({"fault": "missing"})
    _allow_holder(w, prefix, tmp_path)
    wait_for(lambda: agent.call(lambda a: a.policy.version) == 1, timeout=10, what="policy")
    agent.reader.tap(HOLDER)
    wait_for(lambda: agent.pin_factory.pin(LOCK_PIN).state == 1, timeout=5, what="unlocked for the holder")
    wait_for(lambda: _events(agent, "badge.granted"), timeout=5, what="grant recorded")
    time.sleep(5.2)  # the unlock window closes
    set_door(agent, True)
    forced = wait_for(lambda: _events(agent, "door.forced"), timeout=5, what="forced door recorded")[0]
    failed = wait_for(lambda: _events(agent, "snapshot.failed"), timeout=5, what="snapshot.failed")
    assert [(e.data["event_id"], e.data["for_kind"], e.data["error"]) for e in failed] == [
        (forced.id, "door.forced", "camera_absent")]
    hb = wait_for(lambda: (h := _last_heartbeat(w, prefix)) and h.peripherals
                  and h.peripherals["camera"].state == "absent" and h, timeout=10, what="heartbeat: camera absent")
    assert hb.peripherals["camera"].error == "not_found"
    assert hb.peripherals["pins"].state == "ok" and hb.peripherals["reader"].state == "ok"
    set_door(agent, False)


def test_a_capture_that_raises_is_recorded_and_reported(running, prefix):
    start, w = running
    agent = start({"fault": "raise"})
    set_door(agent, True)
    forced = wait_for(lambda: _events(agent, "door.forced"), timeout=5, what="forced door")[0]
    failed = wait_for(lambda: _events(agent, "snapshot.failed"), timeout=5, what="snapshot.failed")[0]
    assert failed.data["event_id"] == forced.id and failed.data["error"] == "capture_failed"
    assert "fault: raise" in failed.data["detail"]
    hb = wait_for(lambda: (h := _last_heartbeat(w, prefix)) and h.peripherals["camera"].state == "failed" and h,
                  timeout=10, what="heartbeat: camera failed")
    assert hb.peripherals["camera"].error == "capture_failed"
    set_door(agent, False)


def test_a_hung_capture_is_given_up_and_the_door_is_still_watched(running, prefix):
    start, w = running
    agent = start({"fault": "hang", "capture_timeout_s": 1.0})
    set_door(agent, True)
    forced = wait_for(lambda: _events(agent, "door.forced"), timeout=5, what="forced door")[0]
    began = time.monotonic()
    failed = wait_for(lambda: _events(agent, "snapshot.failed"), timeout=5, what="snapshot.failed")[0]
    assert failed.data["event_id"] == forced.id and failed.data["error"] == "capture_timeout"
    assert time.monotonic() - began < 3.0
    set_door(agent, False)  # the loop was never held up by the camera
    wait_for(lambda: _events(agent, "door.closed"), timeout=5, what="door closed recorded")
    hb = wait_for(lambda: (h := _last_heartbeat(w, prefix)) and h.peripherals["camera"].state == "failed" and h,
                  timeout=10, what="heartbeat: camera failed")
    assert hb.peripherals["camera"].error == "capture_timeout"
    # The hung capture is still stuck (a daemon thread left behind; a retry's test frame may hang
    # too, up to the guard's bound of two); stopping does not wait for them.
    assert 1 <= agent.camera.hung_calls <= 2
    started = time.monotonic()
    agent.stop()
    assert time.monotonic() - started < 3.0


def test_gpio_that_cannot_be_opened_leaves_the_station_running(broker, prefix, tmp_path):
    """A pin factory whose pins cannot be claimed (as with no access to /dev/gpiochip*): no
    door and no lock, but the unit starts, reads badges and says so in its heartbeat."""
    from gpiozero.pins.mock import MockFactory

    class NoAccess(MockFactory):
        def pin(self, spec, **kwargs):
            raise PermissionError("/dev/gpiochip0: permission denied")

    w = Watcher(broker.port, f"{prefix}/#")
    cfg = unit_file.load(_unit(tmp_path, broker.port, prefix))
    agent = Agent(msgspec.structs.replace(cfg, pins=msgspec.structs.replace(cfg.pins, factory=None)),
                  pin_factory=NoAccess()).start()
    try:
        assert agent.door_switch is None and agent.outputs is None
        agent.reader.tap(HOLDER)
        wait_for(lambda: _events(agent, "badge.denied"), timeout=5, what="tap decided without pins")
        hb = wait_for(lambda: (h := _last_heartbeat(w, prefix)) and h, timeout=10, what="heartbeat")
        assert hb.peripherals["pins"].state == "failed" and hb.peripherals["pins"].error == "pin_failed"
        assert "permission denied" in hb.peripherals["pins"].detail
    finally:
        agent.stop()
        w.close()


@pytest.mark.timeout(60)
def test_sigterm_stops_the_real_agent_well_within_systemds_limit_while_a_capture_hangs(broker, prefix, tmp_path):
    scenario = tmp_path / "forced.yaml"
    scenario.write_text(yaml.safe_dump({"repeat": 1, "steps": [{"door": "open"}, {"wait": 30}]}))
    unit = _unit(tmp_path, broker.port, prefix, {"fault": "hang", "capture_timeout_s": 30})
    log = tmp_path / "agent.log"
    proc = spawn(["device", "--config", str(unit), "--scenario", str(scenario)], log)
    try:
        wait_for(lambda: "hangs (fault: hang)" in log.read_text(), timeout=20, what="a capture hanging")
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    print(f"agent stopped {took:.2f} s after SIGTERM with a capture hung")
    assert code == 0, log.read_text()[-2000:]
    assert took < 10.0, f"{took:.1f} s (TimeoutStopSec is 20)"


def test_a_printer_reports_its_print_server_going_down_and_up(broker, prefix, tmp_path):
    from device.printing.standin import StandInPrintServer

    path = write_unit_config(tmp_path, broker.port, prefix, station="printer-1")
    cfg = yaml.safe_load(path.read_text())
    cfg["station"]["kind"] = "printer"
    cfg["printer"] = {"backend": "standin", "check_s": 0.3}
    path.write_text(yaml.safe_dump(cfg))
    server = StandInPrintServer()
    server.up = False
    agent = Agent(unit_file.load(path), print_server=server).start()
    try:
        health = wait_for(lambda: (h := agent.call(lambda a: a.peripherals())["print_server"]).state != "ok" and h,
                          timeout=5, what="print server reported down")
        assert (health.state, health.error) == ("failed", "cups_down")
        server.up = True
        wait_for(lambda: agent.call(lambda a: a.peripherals())["print_server"].state == "ok",
                 timeout=5, what="print server reported up again")
        assert [e.kind for e in _events(agent) if e.kind.startswith("cups.")] == ["cups.down", "cups.up"]
    finally:
        agent.stop()
