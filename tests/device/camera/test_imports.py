"""device.camera imports and makes a stand-in camera on any machine, without picamera2."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[3]  # the repository, so `device` imports

_CHECK = """
import sys
import device.camera, device.camera.picamera
from device.camera import make_camera
from device.config import CameraSection
cam = make_camera(CameraSection(type="standin", width=160, height=120), "cabinet-1")
cam.capture("door.opened")
print(sorted(m for m in ("picamera2", "libcamera") if m in sys.modules))
"""


def test_picamera2_is_not_imported_by_the_package():
    done = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True,
                          timeout=60, cwd=_ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
