"""The picamera2 adapter off the Pi: a clear CameraUnavailable, never an import traceback."""
from __future__ import annotations

import sys

import pytest

from device.camera.base import CameraUnavailable
from device.camera.picamera import PiCamera


def test_without_picamera2_the_adapter_says_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # as on any machine but a Pi
    with pytest.raises(CameraUnavailable, match="picamera2.*standin"):
        PiCamera(1280, 720, 80)


def test_on_this_machine_the_adapter_is_unavailable():
    try:
        import picamera2  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip("picamera2 imports here: this is a Pi")
    with pytest.raises(CameraUnavailable):
        PiCamera(640, 480, 80)
