"""What a unit's heartbeat says of its lock: a unit with a lock relay reports it locked or
released (``locked``: true/false); a unit without one (a restricted door without ``pins.lock``,
like a shredder or a printer) reports ``locked: null``, so the status page shows no lock for it
rather than a lock its LEDs do not make."""
from __future__ import annotations

from pathlib import Path

import yaml

from device import unit_file
from device.agent import Agent
from kagiban import protocol
from tests.support.mosquitto import wait_for
from tests.support.stack import write_unit_config
from tests.support.watcher import Watcher


def _door_unit(tmp_path: Path, port: int, prefix: str, lock: bool) -> Path:
    path = write_unit_config(tmp_path, port, prefix, station="door-1", heartbeat_s=0.5)
    cfg = yaml.safe_load(path.read_text())
    cfg["station"]["kind"] = "door"
    if not lock:
        del cfg["pins"]["lock"]
    path.write_text(yaml.safe_dump(cfg))
    return path


def _heartbeats(w: Watcher, prefix: str) -> list[protocol.Heartbeat]:
    return [protocol.Heartbeat.model_validate_json(p) for p in w.on(f"{prefix}/ward-a/door-1/heartbeat")]


def test_a_door_without_a_lock_relay_reports_no_lock(broker, prefix, tmp_path):
    w = Watcher(broker.port, f"{prefix}/#")
    agent = Agent(unit_file.load(_door_unit(tmp_path, broker.port, prefix, lock=False))).start()
    try:
        [hb, *_] = wait_for(lambda: _heartbeats(w, prefix), timeout=10, what="a heartbeat")
        assert hb.kind == "door" and hb.locked is None
        assert agent.outputs is not None  # its LEDs and buzzer are there: still no lock
    finally:
        agent.stop()
        w.close()


def test_a_door_with_a_lock_relay_reports_it_locked_and_released(broker, prefix, tmp_path):
    w = Watcher(broker.port, f"{prefix}/#")
    agent = Agent(unit_file.load(_door_unit(tmp_path, broker.port, prefix, lock=True))).start()
    try:
        [hb, *_] = wait_for(lambda: _heartbeats(w, prefix), timeout=10, what="a heartbeat")
        assert hb.locked is True
        agent.call(lambda a: a.outputs.unlock())  # as a granted tap does, for the unlock window
        wait_for(lambda: any(h.locked is False for h in _heartbeats(w, prefix)), timeout=10,
                 what="a heartbeat saying the lock is released")
    finally:
        agent.stop()
        w.close()
