"""Scripted scenarios for a unit running on mock pins with a stand-in reader (demo and tests).

A scenario file is YAML::

    repeat: 3            # 0 = until stopped
    steps:
      - tap: 0123456789ABCDEF
      - wait: 1.5
      - door: open
      - wait: 2
      - door: close

The runner drives the same mock pins and stand-in reader a person would drive by hand, so the
agent sees exactly what it would see from hardware.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from kagiban.configfile import load_config

_LOG = logging.getLogger(__name__)


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tap(_Step):
    tap: str = Field(pattern=r"^[0-9A-Fa-f]{8,32}$")


class Door(_Step):
    door: Literal["open", "close"]


class Wait(_Step):
    wait: float = Field(ge=0, le=3600)


class Scenario(BaseModel):
    """A list of steps and how often to run it."""

    model_config = ConfigDict(extra="forbid")
    repeat: int = Field(default=1, ge=0)
    steps: list[Union[Tap, Door, Wait]]


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario file; ConfigError names the file and the step."""
    return load_config(path, Scenario)


class ScenarioRunner:
    """Plays a scenario against a running agent in a thread."""

    def __init__(self, agent, scenario: Scenario):
        pins = agent.cfg.pins
        if pins.factory != "mock" or agent.cfg.reader.type != "standin":
            raise ValueError("scenarios need pins.factory: mock and reader.type: standin")
        self.agent = agent
        self.scenario = scenario
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scenario", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def done(self) -> bool:
        return not self._thread.is_alive()

    def _run(self) -> None:
        rounds = 0
        while not self._stop.is_set() and (self.scenario.repeat == 0 or rounds < self.scenario.repeat):
            rounds += 1
            for step in self.scenario.steps:
                if self._stop.is_set():
                    return
                self.play(step)

    def play(self, step: Tap | Door | Wait) -> None:
        """One step, as a person at the station would do it."""
        if isinstance(step, Wait):
            self._stop.wait(step.wait)
        elif isinstance(step, Tap):
            self.agent.reader.tap(step.tap.upper())
        else:
            set_door(self.agent, step.door == "open")


def set_door(agent, is_open: bool) -> None:
    """Drive the door's mock reed-switch pin to the level that means open or closed."""
    pins = agent.cfg.pins
    pin = agent.pin_factory.pin(pins.door)
    closed_low = pins.door_closed_level == "low"
    if is_open == closed_low:
        pin.drive_high()
    else:
        pin.drive_low()
