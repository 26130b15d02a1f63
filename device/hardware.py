"""Builds the real adapters a unit's YAML asks for (pins, door switch, outputs, reader, camera).

Kept apart from the agent so the agent can be given stand-ins instead; the hardware libraries
themselves are imported only inside the adapters this module calls.
"""
from __future__ import annotations

import logging
from importlib.metadata import entry_points

from device.config import CameraSection, PinsSection, ReaderSection

_LOG = logging.getLogger(__name__)


def pin_factory(pins: PinsSection):
    """gpiozero's pin factory named in the config; None lets gpiozero choose (on a Pi: lgpio)."""
    if pins.factory is None:
        return None
    if pins.factory == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        return MockFactory(pin_class=MockPWMPin)
    found = entry_points(group="gpiozero_pin_factories", name=pins.factory)
    if not found:
        raise RuntimeError(f"gpiozero pin factory {pins.factory!r} is not installed")
    return next(iter(found)).load()()


def door(pins: PinsSection, factory):
    """The door reed switch, if the unit has one."""
    if pins.door is None:
        return None
    from device.sensors.door import GpioDoorSwitch

    return GpioDoorSwitch(pins.door, closed_level=pins.door_closed_level, pin_factory=factory)


def outputs(pins: PinsSection, factory):
    """Lock relay, LEDs and buzzer."""
    from device.outputs import GpioOutputs

    return GpioOutputs(
        lock=pins.lock,
        lock_active_high=pins.lock_active_high,
        led_granted=pins.led_granted,
        led_denied=pins.led_denied,
        buzzer=pins.buzzer,
        pin_factory=factory,
    )


def reader(section: ReaderSection):
    """The badge reader (nfcpy or a stand-in), or None."""
    from device.sensors import make_reader

    return make_reader(section)


def camera(section: CameraSection, station: str):
    """The camera (picamera2 or a stand-in), or None."""
    from device.camera import make_camera

    return make_camera(section, station)
