"""gpiozero's pin backend chosen by the unit file (``pins.factory``).

One factory instance should be shared by the door switch and the outputs of a unit, so a
simulated unit (``factory: mock``) can drive its door pin and read its relay pin.

gpiozero's mock pins record every level change for ever (``pin.states``); a simulated unit
playing a scenario for days would grow by the ~10 changes of each tap (relay, LEDs, beeps).
Its pins keep the last ``MOCK_HISTORY`` changes instead.
"""
from __future__ import annotations

import logging
from typing import Any

from device.config import PinsSection

_LOG = logging.getLogger(__name__)

# Level changes a simulated unit's mock pin remembers (tests read them back as ``pin.states``).
MOCK_HISTORY = 1000


class PinFactoryUnavailable(RuntimeError):
    """The pin backend named in the unit file cannot be loaded on this machine."""


def make_pin_factory(pins: PinsSection) -> Any | None:
    """A gpiozero pin factory for ``pins.factory``; None leaves gpiozero to pick its default."""
    if pins.factory is None:
        return None
    from importlib.metadata import entry_points

    for ep in entry_points(group="gpiozero_pin_factories"):
        if ep.name == pins.factory:
            try:
                factory = _mock_factory() if pins.factory == "mock" else ep.load()()
            except Exception as exc:  # each backend fails differently off the Pi
                raise PinFactoryUnavailable(
                    f"gpiozero pin factory {pins.factory!r} cannot be used here: {exc}"
                ) from exc
            _LOG.info("gpiozero pin factory: %s", pins.factory)
            return factory
    raise PinFactoryUnavailable(f"gpiozero has no pin factory named {pins.factory!r}")


def _mock_factory() -> Any:
    """gpiozero's MockFactory whose pins keep a bounded history of level changes."""
    from collections import deque

    from gpiozero.pins.mock import MockFactory, MockPin

    class BoundedMockPin(MockPin):
        """A mock pin whose ``states`` holds the last MOCK_HISTORY level changes."""

        def clear_states(self) -> None:
            super().clear_states()
            self.states = deque(self.states, maxlen=MOCK_HISTORY)

    return MockFactory(pin_class=BoundedMockPin)
