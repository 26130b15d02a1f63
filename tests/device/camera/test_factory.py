"""make_camera from the unit file's camera section."""
from __future__ import annotations

import io
import sys

import pytest
from PIL import Image

from device.camera import CameraUnavailable, StandInCamera, make_camera
from device.config import CameraSection


def test_standin_type_gives_a_working_camera():
    cam = make_camera(CameraSection(type="standin", width=320, height=240, jpeg_quality=70),
                      "cabinet-1")
    assert isinstance(cam, StandInCamera)
    with Image.open(io.BytesIO(cam.capture("badge.denied"))) as img:
        assert img.size == (320, 240)
    cam.close()


def test_none_type_gives_no_camera():
    assert make_camera(CameraSection(type="none"), "cabinet-1") is None


def test_picamera2_type_off_the_pi_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CameraUnavailable, match="Raspberry Pi OS"):
        make_camera(CameraSection(type="picamera2"), "cabinet-1")
