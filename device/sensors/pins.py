"""gpiozero's pin backend chosen by the unit file (``pins.factory``).

One factory instance should be shared by the door switch and the outputs of a unit, so a
simulated unit (``factory: mock``) can drive its door pin and read its relay pin.

gpiozero's mock pins record every level change for ever (``pin.states``); a simulated unit
playing a scenario for days would grow by the ~10 changes of each tap (relay, LEDs, beeps).
Its pins keep the last ``MOCK_HISTORY`` changes instead.

A backend whose library cannot be imported (lgpio not installed, RPi.GPIO off a Pi) is a
configuration error for this machine (:class:`~device.missing_library.LibraryMissing`, exit 2); a
backend that loads but cannot open the GPIO chip is a hardware failure
(:class:`PinFactoryUnavailable`): the agent then runs without pins and reports them failed.
"""
from __future__ import annotations

import logging
from typing import Any

from device.config import PinsSection
from device.missing_library import LibraryMissing

_LOG = logging.getLogger(__name__)

# Level changes a simulated unit's mock pin remembers (tests read them back as ``pin.states``).
MOCK_HISTORY = 1000


# What to do when a backend's library cannot be imported, by backend.
_FIXES = {
    "lgpio": "install lgpio (apt install python3-lgpio, or pip install lgpio in the agent's venv); "
             "on a machine without GPIO set pins.factory: mock",
    "rpigpio": "RPi.GPIO works only on a Raspberry Pi 4 or earlier: set pins.factory: lgpio "
               "(Pi 4 and Pi 5), or mock on a machine without GPIO",
    "pigpio": "install pigpio and run its daemon, or set pins.factory: lgpio",
    "native": "set pins.factory: lgpio",
}
_NO_DEFAULT_FIX = ("on a Raspberry Pi set pins.factory: lgpio (apt install python3-lgpio); on a machine "
                   "without GPIO set pins.factory: mock")


class PinFactoryUnavailable(RuntimeError):
    """The pin backend loads but cannot drive this machine's pins (no GPIO chip, no access)."""


def _entry_point(name: str):
    from importlib.metadata import entry_points

    for ep in entry_points(group="gpiozero_pin_factories"):
        if ep.name == name:
            return ep
    raise LibraryMissing("pins.factory", f"gpiozero has no pin factory named {name!r}",
                         "use lgpio, rpigpio, pigpio, native or mock")


def require_pin_factory(name: str) -> Any:
    """The factory class of backend ``name``, imported; LibraryMissing if it cannot be."""
    try:
        return _entry_point(name).load()
    except LibraryMissing:
        raise
    except Exception as exc:  # ImportError, or RPi.GPIO's RuntimeError off a Pi
        raise LibraryMissing("pins.factory", f"gpiozero pin factory {name!r} cannot be loaded ({exc})",
                             _FIXES.get(name, "set another pins.factory")) from exc


def no_default_factory(reasons: list[str]) -> LibraryMissing:
    """The error for a unit without ``pins.factory`` where gpiozero found no backend to use
    (gpiozero's BadPinFactory); ``reasons``: why each backend it tried failed."""
    tried = "; ".join(r.removeprefix("Falling back from ") for r in reasons)
    return LibraryMissing("pins.factory", f"not set, and no gpiozero pin backend works here ({tried})",
                          _NO_DEFAULT_FIX)


def make_pin_factory(pins: PinsSection) -> Any | None:
    """A gpiozero pin factory for ``pins.factory``; None leaves gpiozero to pick its default.

    LibraryMissing if the backend cannot be imported; PinFactoryUnavailable if it loads but
    cannot open this machine's GPIO.
    """
    if pins.factory is None:
        return None
    if pins.factory == "mock":
        factory = _mock_factory()
    else:
        cls = require_pin_factory(pins.factory)
        try:
            factory = cls()
        except Exception as exc:  # each backend fails differently without its chip
            raise PinFactoryUnavailable(
                f"gpiozero pin factory {pins.factory!r} cannot open the GPIO: {exc}") from exc
    _LOG.info("gpiozero pin factory: %s", pins.factory)
    return factory


def _mock_factory() -> Any:
    """gpiozero's MockFactory whose pins keep a bounded history of level changes."""
    from collections import deque

    from gpiozero.pins.mock import MockFactory, MockPin

    class BoundedMockPin(MockPin):
        """A mock pin whose ``states`` holds the last MOCK_HISTORY level changes."""

        def clear_states(self) -> None:
            super().clear_states()
            self.states: deque[Any] = deque(self.states, maxlen=MOCK_HISTORY)

    return MockFactory(pin_class=BoundedMockPin)
