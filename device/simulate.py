"""Scripted scenarios for a unit running on mock pins with a stand-in reader (demo and tests).

A scenario file is YAML::

    repeat: 3            # 0 = until stopped
    start_after_s: 60    # optional: seconds before the first round (default 0)
    steps:
      - tap: 0123456789ABCDEF
      - wait: 1.5
      - door: open
      - wait: 2
      - door: close

A shredder's scenario may also press its stop button (``press: stop_button``: pressed for a
moment, then released) and open or close its bin door (``bin: open``, ``bin: close``); an
annunciator's may press its silence button (``press: silence``).

The runner drives the same mock pins and stand-in reader a person would drive by hand, so the
agent sees exactly what it would see from hardware.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Annotated, Literal, Union

import msgspec
from msgspec import Meta

from kagiban.badge_id import normalise_badge_id
from kagiban.configfile import FieldProblem, load_config

_LOG = logging.getLogger(__name__)


class StepBase(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="step"):
    """A step: one key, which is also its tag (kagiban.configfile reads ``{wait: 2}`` as Wait).

    The demo's own steps (demo.steps) build on this too, so its union of steps is one msgspec
    tagged union."""


class Tap(StepBase, tag="tap"):
    tap: str

    def __post_init__(self) -> None:
        try:
            self.tap = normalise_badge_id(self.tap)  # the one badge-id rule
        except ValueError as exc:
            raise FieldProblem("tap", str(exc)) from exc


class Door(StepBase, tag="door"):
    door: Literal["open", "close"]


class Wait(StepBase, tag="wait"):
    wait: Annotated[float, Meta(ge=0, le=3600)]


class Press(StepBase, tag="press"):
    press: Literal["stop_button", "silence"]


class Bin(StepBase, tag="bin"):
    bin: Literal["open", "close"]


# How long a simulated button press lasts: well past any sensible debounce_ms.
PRESS_S = 0.3


class Scenario(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A list of steps and how often to run it."""

    repeat: Annotated[int, Meta(ge=0)] = 1
    # A quiet stretch before the first round, kept out of the steps so a long idle followed by
    # many repeated taps stays a short list (bench/footprint.py measures the agent holding it).
    start_after_s: Annotated[float, Meta(ge=0, le=86400)] = 0.0
    steps: list[Union[Tap, Door, Wait, Press, Bin]]


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario file; ConfigError names the file and the step."""
    return load_config(path, Scenario)


class ScenarioRunner:
    """Plays a scenario against a running agent in a thread."""

    def __init__(self, agent, scenario: Scenario):
        pins = agent.cfg.pins
        taps = any(isinstance(step, Tap) for step in scenario.steps)
        if pins.factory != "mock" or (taps and agent.cfg.reader.type != "standin"):
            # A unit without a reader (an annunciator) may play a scenario without taps.
            raise ValueError("scenarios need pins.factory: mock, and reader.type: standin to tap")
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
        if self._stop.wait(self.scenario.start_after_s):
            return
        rounds = 0
        while not self._stop.is_set() and (self.scenario.repeat == 0 or rounds < self.scenario.repeat):
            rounds += 1
            for step in self.scenario.steps:
                if self._stop.is_set():
                    return
                self.play(step)

    def play(self, step: Tap | Door | Wait | Press | Bin) -> None:
        """One step, as a person at the station would do it."""
        if isinstance(step, Wait):
            self._stop.wait(step.wait)
        elif isinstance(step, Tap):
            self.agent.reader.tap(step.tap.upper())
        elif isinstance(step, Press):
            set_input(self.agent, step.press, True)
            self._stop.wait(PRESS_S)
            set_input(self.agent, step.press, False)
        elif isinstance(step, Bin):
            set_input(self.agent, "bin", step.bin == "open")
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


def set_input(agent, name: str, active: bool) -> None:
    """Drive an extra input's mock pin: ``stop_button``, an annunciator's ``silence`` button or a
    cabinet's ``purpose:<code>`` button pressed (to ground) or released, ``bin`` door open or closed (wired like the door)."""
    pins = agent.cfg.pins
    if name in ("stop_button", "silence"):
        # A push button to ground: pressed reads low.
        pin = agent.pin_factory.pin(pins.stop_button if name == "stop_button" else pins.silence_button)
        (pin.drive_low if active else pin.drive_high)()
    elif name == "bin":
        pin = agent.pin_factory.pin(pins.bin_sensor)
        closed_low = pins.door_closed_level == "low"
        (pin.drive_high if active == closed_low else pin.drive_low)()
    elif name == "tray":
        # A printer's tray sensor: active = paper lies there (the contact is closed).
        pin = agent.pin_factory.pin(pins.tray)
        low = pins.tray_occupied_level == "low"
        (pin.drive_low if active == low else pin.drive_high)()
    elif name.startswith("purpose:") and name[len("purpose:"):] in getattr(pins, "purpose_buttons", {}):
        # A cabinet's purpose button: pressed pulls its pin to ground.
        pin = agent.pin_factory.pin(pins.purpose_buttons[name[len("purpose:"):]])
        (pin.drive_low if active else pin.drive_high)()
    else:
        raise ValueError(f"no simulated input named {name!r}")
