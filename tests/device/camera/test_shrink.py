"""A frame too large for the protocol is scaled down rather than sent and refused for ever."""
import base64
import io
import os

from PIL import Image

from device.camera.shrink import fit_jpeg
from kagiban.protocol import MAX_SNAPSHOT_BYTES


def noisy_jpeg(w: int, h: int) -> bytes:
    img = Image.frombytes("RGB", (w, h), os.urandom(w * h * 3))  # noise does not compress
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_small_frame_is_left_alone():
    jpeg = noisy_jpeg(64, 48)
    assert fit_jpeg(jpeg) is jpeg


def test_large_frame_is_scaled_to_fit_the_protocol():
    jpeg = noisy_jpeg(2400, 1800)
    assert len(base64.b64encode(jpeg)) > MAX_SNAPSHOT_BYTES
    small = fit_jpeg(jpeg)
    assert len(base64.b64encode(small)) + 4096 <= MAX_SNAPSHOT_BYTES
    img = Image.open(io.BytesIO(small))
    assert img.format == "JPEG" and img.size[0] < 2400
    assert abs(img.size[0] / img.size[1] - 4 / 3) < 0.01
