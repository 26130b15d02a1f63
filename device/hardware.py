"""The unit's hardware, assembled from its config (or handed in, or simulated): pins (door,
outputs, extra inputs), badge reader, camera and print server, and each one's health.

Each factory imports its hardware library only when the config asks for it; a library that
cannot be imported stops the unit at assembly (device.missing_library.LibraryMissing), before
anything starts. Anything else a peripheral does degrades the station, never stops it: pins
whose GPIO cannot be opened leave the unit without door, outputs and inputs (their health
says why); a reader or camera that fails is reopened by its own code.

A simulated unit (``pins.factory: mock``) starts with its door shut, its stop button released
and its bin closed (a mock pin's idle level would read open).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

import msgspec

from device.camera.base import Camera
from device.camera.guard import CameraGuard
from device.config import DeviceConfig, PinsSection
from device.health import HealthCell
from device.outputs import Outputs
from device.sensors.badge import BadgeReader
from device.sensors.door import DoorSwitch
from device import wire
from kagiban.wire import Peripheral

_LOG = logging.getLogger(__name__)

# Extra inputs by name: the config pin, and whether the input is active when its contact is
# open (a bin-door reed switch) or when it is closed (a stop button pulls its pin to ground).
INPUT_PINS = {"stop_button": ("stop_button", False), "bin": ("bin_sensor", True), "tray": ("tray", False),
              "silence": ("silence_button", False)}

# Every pin of a unit: with none set, no pin factory is made at all.
_PIN_FIELDS = ("door", "lock", "led_granted", "led_denied", "buzzer", "power_relay", "stop_button",
               "bin_sensor", "tray", "lamp", "silence_button")


# A cabinet's purpose buttons are inputs named by this prefix and their work code (to ground).
PURPOSE = "purpose:"


def input_active(name: str, is_open: bool) -> bool:
    """An input's contact level as the station logic sees it: pressed, or open."""
    active_open = False if name.startswith(PURPOSE) else INPUT_PINS.get(name, (name, True))[1]
    return is_open if active_open else not is_open


def make_inputs(pins: PinsSection, pin_factory=None) -> dict[str, DoorSwitch]:
    """The unit's extra inputs (stop button, bin door, tray, silence button) as switches, by input name."""
    from device.sensors.door import GpioDoorSwitch

    out: dict[str, DoorSwitch] = {}
    for name, (attr, _active_open) in INPUT_PINS.items():
        pin = getattr(pins, attr)
        if pin is not None:
            level = {"stop_button": "low", "silence": "low",
                     "tray": pins.tray_occupied_level}.get(name, pins.door_closed_level)
            out[name] = GpioDoorSwitch(pin, closed_level=level, pin_factory=pin_factory)
    for code, pin in getattr(pins, "purpose_buttons", {}).items():
        out[PURPOSE + code] = GpioDoorSwitch(pin, closed_level="low", pin_factory=pin_factory)
    return out


@dataclass
class Hardware:
    """What a unit has; None (or no inputs) for what it lacks or could not open."""

    cfg: DeviceConfig
    pin_factory: Any = None
    door: DoorSwitch | None = None
    outputs: Outputs | None = None
    inputs: dict[str, DoorSwitch] = field(default_factory=dict)
    reader: BadgeReader | None = None
    camera: CameraGuard | None = None
    print_server: Any = None
    pins_health: HealthCell | None = None
    print_health: HealthCell | None = None
    reader_health: HealthCell | None = None  # for a reader without a health of its own

    def peripherals(self) -> dict[Peripheral, wire.PeripheralHealth]:
        """The health of each peripheral the unit has, by name (as the heartbeat reports it)."""
        cells: dict[Peripheral, object] = {
            "pins": self.pins_health,
            # A reader without a health of its own (the stand-in) works whenever it exists.
            "reader": getattr(self.reader, "health", self.reader_health),
            "camera": self.camera.health if self.camera is not None else None,
            "print_server": self.print_health,
        }
        return {name: cell.get() for name, cell in cells.items() if isinstance(cell, HealthCell)}

    def note_print_server(self, up: bool | None) -> None:
        """The print server's health as the printer logic last found it (None: not known)."""
        if self.print_health is None or up is None:
            return
        if up:
            self.print_health.ok()
        else:
            self.print_health.failed("cups_down", "the print server does not answer")

    def safe(self) -> None:
        """Locked and powered off: how the unit starts."""
        if self.outputs:
            self.outputs.lock()
            self.outputs.power_off()

    def close_inputs(self, reader_timeout: float) -> None:
        """Stop the reader and the switches (their callbacks end)."""
        if self.reader:
            try:
                self.reader.close(timeout=reader_timeout)  # type: ignore[call-arg]
            except TypeError:  # a reader without a timeout (the stand-in)
                self.reader.close()
        if self.door:
            self.door.close()
        for sw in self.inputs.values():
            sw.close()


def assemble(
    cfg: DeviceConfig,
    *,
    tz: tzinfo,
    pin_factory=None,
    door: DoorSwitch | None = None,
    outputs: Outputs | None = None,
    reader: BadgeReader | None = None,
    camera: Camera | None = None,
    inputs: dict[str, DoorSwitch] | None = None,
    print_server=None,
    build: bool = True,
) -> Hardware:
    """The unit's hardware: what is given, the rest made from ``cfg`` (only if ``build``;
    without it, no camera either unless one is given)."""
    hw = Hardware(cfg=cfg)
    if build:
        from device.libraries import check
        from device.sensors import make_reader

        check(cfg)
        pin_factory, door, outputs, inputs = _make_pins(hw, cfg.pins, pin_factory, door, outputs, inputs)
        reader = reader if reader is not None else make_reader(cfg.reader)
        if print_server is None and cfg.station.kind == "printer":
            from device.printing import make_print_server

            print_server = make_print_server(cfg.printer)
    hw.pin_factory = pin_factory
    hw.inputs = inputs or {}
    if cfg.pins.factory == "mock":
        from device.simulate import set_door, set_input

        if cfg.pins.door is not None:
            set_door(hw, False)
        for name in hw.inputs:
            set_input(hw, name, False)
    hw.door, hw.outputs, hw.reader = door, outputs, reader
    hw.reader_health = HealthCell("badge reader") if reader is not None else None
    # Never called directly: captures have a time limit and a missing camera is reopened.
    from device.camera import guarded_camera

    section = cfg.camera if build else msgspec.structs.replace(cfg.camera, type="none")
    hw.camera = guarded_camera(section, cfg.station.id, tz=tz, camera=camera)
    hw.print_server = print_server
    if print_server is not None:
        hw.print_health = HealthCell("print server")
    return hw


def _make_pins(hw: Hardware, p: PinsSection, pin_factory, door, outputs, inputs):
    """The unit's pin factory, door, outputs and extra inputs (those not given). GPIO that
    cannot be opened leaves the unit without them, its pins reported failed; a pin library
    that cannot be imported is LibraryMissing."""
    from device.outputs import make_outputs
    from device.sensors.door import make_door
    from device.sensors.pins import PinFactoryUnavailable, make_pin_factory, no_default_factory

    if not any(getattr(p, name) is not None for name in _PIN_FIELDS):
        return pin_factory, door, outputs, inputs
    health = hw.pins_health = HealthCell("pins")
    # Without pins.factory gpiozero tries its backends in turn, warning about each that
    # fails: those reasons go into the one line of LibraryMissing, not onto the console.
    with warnings.catch_warnings(record=True) as fallbacks:
        warnings.simplefilter("always")
        try:
            if pin_factory is None:
                pin_factory = make_pin_factory(p)
            door = door if door is not None else make_door(p, pin_factory)
            outputs = outputs if outputs is not None else make_outputs(p, pin_factory)
            inputs = inputs if inputs is not None else make_inputs(p, pin_factory)
        except ImportError as exc:  # gpiozero's BadPinFactory: no backend loads here
            raise no_default_factory([str(w.message) for w in fallbacks] or [str(exc)]) from exc
        except PinFactoryUnavailable as exc:
            health.failed("gpio_unavailable", str(exc))
        except Exception as exc:  # a pin in use, no permission on /dev/gpiochip*, ...
            health.failed("pin_failed", f"{type(exc).__name__}: {exc}")
    for w in fallbacks:
        _LOG.info("gpiozero: %s", w.message)
    if not health.is_ok:
        _LOG.error("pins cannot be used (%s): running without door, lock and inputs", health.get().detail)
        for made in (door, outputs, *(inputs or {}).values()):
            try:
                if made is not None:
                    made.close()
            except Exception:
                _LOG.debug("closing a half-made pin device failed", exc_info=True)
        return pin_factory, None, None, {}
    return pin_factory, door, outputs, inputs
