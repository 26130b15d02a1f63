"""The gpiozero pin backend named in the unit file."""
from __future__ import annotations

from pathlib import Path

import pytest

from device.config import PinsSection
from device.missing_library import LibraryMissing
from device.sensors.pins import make_pin_factory


def test_make_pin_factory_by_name():
    assert make_pin_factory(PinsSection()) is None
    from gpiozero.pins.mock import MockFactory

    factory = make_pin_factory(PinsSection(factory="mock"))
    assert isinstance(factory, MockFactory)
    factory.close()


_MODEL = Path("/proc/device-tree/model")
_ON_A_PI = _MODEL.exists() and "Raspberry Pi" in _MODEL.read_text(errors="replace")


@pytest.mark.skipif(_ON_A_PI, reason="RPi.GPIO works on a Raspberry Pi")
def test_a_pi_only_pin_factory_fails_with_a_clear_error():
    # RPi.GPIO refuses to import off a Pi; lgpio may be missing altogether: a configuration
    # error for this machine that names the key and the way out.
    with pytest.raises(LibraryMissing, match="rpigpio") as caught:
        make_pin_factory(PinsSection(factory="rpigpio"))
    assert caught.value.key == "pins.factory" and "pins.factory: lgpio" in caught.value.fix


def test_a_simulated_units_mock_pins_keep_a_bounded_history():
    from device.sensors.pins import MOCK_HISTORY

    factory = make_pin_factory(PinsSection(factory="mock"))
    try:
        pin = factory.pin(27)
        pin.function = "output"
        for i in range(MOCK_HISTORY * 3):
            pin.state = i % 2
        assert len(pin.states) == MOCK_HISTORY
        assert bool(pin.states[-1].state) == bool((MOCK_HISTORY * 3 - 1) % 2)
    finally:
        factory.close()
