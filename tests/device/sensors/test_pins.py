"""The gpiozero pin backend named in the unit file."""
from __future__ import annotations

from pathlib import Path

import pytest

from device.config import PinsSection
from device.sensors.pins import PinFactoryUnavailable, make_pin_factory


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
    # RPi.GPIO refuses to import off a Pi; lgpio may be missing altogether.
    with pytest.raises(PinFactoryUnavailable, match="rpigpio"):
        make_pin_factory(PinsSection(factory="rpigpio"))
