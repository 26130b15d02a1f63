"""device.sensors imports and makes its stand-ins on any machine: gpiozero and nfcpy stay out."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[3]  # the repository, so `device` imports

_CHECK = """
import sys
import device.sensors, device.sensors.door, device.sensors.nfc_reader, device.sensors.pins
import device.sensors.debounce
from device.config import ReaderSection
from device.sensors import make_reader
make_reader(ReaderSection(type="nfcpy"))
make_reader(ReaderSection(type="standin")).tap("04A22B1A")
print(sorted(m for m in ("gpiozero", "nfc", "RPi", "lgpio") if m in sys.modules))
"""


def test_hardware_libraries_are_not_imported_by_the_package():
    done = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True,
                          timeout=60, cwd=_ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
