"""The door (or tray) contact: a reed switch on a GPIO pin, and a stand-in driven by software.

Edges are reported raw; the station debounces them (see :mod:`device.sensors.debounce`).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Literal, Protocol

from device.config import PinsSection

_LOG = logging.getLogger(__name__)

# on_edge(door_open, time.monotonic())
EdgeCallback = Callable[[bool, float], None]


class DoorSwitch(Protocol):
    """A door contact that reports raw open/closed edges."""

    def start(self, on_edge: EdgeCallback) -> None:
        """Begin reporting edges; ``on_edge`` runs on the backend's thread, never the caller's."""

    def is_open(self) -> bool:
        """The current raw level: True if the door is open."""

    def close(self) -> None:
        """Stop reporting and release the pin."""


def _deliver(on_edge: EdgeCallback | None, door_open: bool) -> None:
    if on_edge is None:
        return
    try:
        on_edge(door_open, time.monotonic())
    except Exception:  # a failing handler must not kill the pin backend's thread
        _LOG.exception("door edge handler failed")


class GpioDoorSwitch:
    """A reed switch read with gpiozero.

    The switch is a gpiozero DigitalInputDevice whose "active" means "door closed": wired to
    ground (``closed_level="low"``) the pin is pulled up, wired to 3V3 (``"high"``) it is pulled
    down. Not a Button: a Button runs a hold-detection thread of its own for each input (a
    resident stack and malloc arena on a memory-tight unit) for "held" events nobody uses.
    Callbacks run on gpiozero's thread; hand them to the station's loop (e.g. a queue).
    """

    def __init__(
        self,
        pin: int,
        *,
        closed_level: Literal["low", "high"] = "low",
        pin_factory: Any | None = None,
    ) -> None:
        if closed_level not in ("low", "high"):
            raise ValueError("closed_level must be 'low' or 'high'")
        from gpiozero import DigitalInputDevice

        # No bounce_time: it is not honoured by every backend; the station debounces.
        self._contact = DigitalInputDevice(pin, pull_up=(closed_level == "low"), pin_factory=pin_factory)
        self._pin = pin
        self._on_edge: EdgeCallback | None = None

    def start(self, on_edge: EdgeCallback) -> None:
        """Report every raw edge to ``on_edge(door_open, monotonic_time)`` on gpiozero's thread."""
        self._on_edge = on_edge
        self._contact.when_activated = self._closed
        self._contact.when_deactivated = self._opened
        _LOG.info("door switch on GPIO%d started (now %s)", self._pin,
                  "open" if self.is_open() else "closed")

    def _closed(self) -> None:
        _deliver(self._on_edge, False)

    def _opened(self) -> None:
        _deliver(self._on_edge, True)

    def is_open(self) -> bool:
        """True if the contact is open now (raw, not debounced)."""
        return not self._contact.is_active

    def close(self) -> None:
        """Stop callbacks and release the pin."""
        # Dropping the handler first silences an edge racing with close().
        self._on_edge = None
        self._contact.close()


class StandInDoorSwitch:
    """A door moved by software, for tests and simulated units."""

    def __init__(self, is_open: bool = False) -> None:
        self._open = is_open
        self._on_edge: EdgeCallback | None = None
        self._lock = threading.Lock()

    def start(self, on_edge: EdgeCallback) -> None:
        """Report edges made by :meth:`set_open` on the thread that calls it."""
        self._on_edge = on_edge

    def set_open(self, is_open: bool) -> None:
        """Move the door; an actual change is reported as an edge."""
        with self._lock:
            changed = is_open != self._open
            self._open = is_open
        if changed:
            _deliver(self._on_edge, is_open)

    def is_open(self) -> bool:
        """True if the door is open."""
        return self._open

    def close(self) -> None:
        """Stop reporting edges."""
        self._on_edge = None


def make_door(pins: PinsSection, pin_factory: Any | None = None) -> DoorSwitch | None:
    """The unit's door switch, or None if no door pin is configured."""
    if pins.door is None:
        return None
    return GpioDoorSwitch(pins.door, closed_level=pins.door_closed_level, pin_factory=pin_factory)
