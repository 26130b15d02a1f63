"""Scenarios: rounds of steps, after an optional quiet stretch (``start_after_s``)."""
from __future__ import annotations

import time
from types import SimpleNamespace

from device.sensors.badge import StandInReader
from device.simulate import ScenarioRunner, load_scenario


def _agent_recording_taps(taps: list[tuple[float, str]]):
    reader = StandInReader()
    reader.start(lambda uid: taps.append((time.monotonic(), uid)))
    cfg = SimpleNamespace(pins=SimpleNamespace(factory="mock"), reader=SimpleNamespace(type="standin"))
    return SimpleNamespace(cfg=cfg, reader=reader)


def test_rounds_start_after_the_quiet_stretch(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("repeat: 3\nstart_after_s: 0.4\nsteps:\n  - tap: 0123456789ABCDEF\n  - wait: 0.01\n")
    taps: list[tuple[float, str]] = []
    runner = ScenarioRunner(_agent_recording_taps(taps), load_scenario(path))
    t0 = time.monotonic()
    runner.start()
    runner._thread.join(5)
    assert runner.done()
    assert [uid for _, uid in taps] == ["0123456789ABCDEF"] * 3
    assert taps[0][0] - t0 >= 0.4


def test_stopping_during_the_quiet_stretch_plays_nothing(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("start_after_s: 30\nsteps:\n  - tap: 0123456789ABCDEF\n")
    taps: list[tuple[float, str]] = []
    runner = ScenarioRunner(_agent_recording_taps(taps), load_scenario(path))
    runner.start()
    t0 = time.monotonic()
    runner.stop()
    assert runner.done() and time.monotonic() - t0 < 5
    assert taps == []


def test_without_start_after_s_the_first_round_starts_at_once(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("steps:\n  - tap: 0123456789ABCDEF\n")
    assert load_scenario(path).start_after_s == 0.0
