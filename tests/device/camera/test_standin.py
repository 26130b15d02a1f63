"""The stand-in camera: real JPEGs of the configured size."""
from __future__ import annotations

import io
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from device.camera.standin import StandInCamera


@pytest.mark.parametrize("size", [(1280, 720), (640, 480), (160, 120)])
def test_a_snapshot_is_a_jpeg_of_the_configured_size(size):
    cam = StandInCamera(size[0], size[1], 80, "cabinet-1")
    data = cam.capture("door.forced")
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"
        assert img.size == size
        img.load()
    cam.close()


def test_the_frame_is_not_blank_and_quality_changes_the_file():
    tokyo = ZoneInfo("Asia/Tokyo")
    data_lo = StandInCamera(640, 480, 20, "cabinet-1", tz=tokyo).capture("door.forced")
    data_hi = StandInCamera(640, 480, 95, "cabinet-1", tz=tokyo).capture("door.forced")
    assert len(data_hi) > len(data_lo)
    with Image.open(io.BytesIO(data_hi)) as img:
        lo, hi = img.convert("L").getextrema()
    assert hi - lo > 150  # light text on a dark frame


def test_long_names_still_make_a_valid_small_jpeg():
    cam = StandInCamera(160, 120, 80, "printer-second-floor-east-wing")
    data = cam.capture("printer.uncollected_printout_warning")
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (160, 120)


def test_any_label_makes_a_frame():
    # The pixel font has capitals, digits and the punctuation of ids, kinds and times; anything
    # else is drawn as "?", never an error.
    data = StandInCamera(320, 240, 80, "cabinet-1").capture("扉 opened (test) #1 ✓")
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (320, 240)
