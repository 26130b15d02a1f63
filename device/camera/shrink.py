"""Keep a snapshot within what the wire protocol carries: a frame too large to send would be
refused by the broker and the hub, and resent for ever, so it is scaled down first.

Pillow is imported only when a frame has to be scaled, which is rare: the agent imports this
module at start and should not carry Pillow for it.
"""
from __future__ import annotations

import io
import logging

from kagiban.wire import MAX_SNAPSHOT_BYTES

_LOG = logging.getLogger(__name__)

# base64 grows the image by 4/3; the JSON envelope needs a little more.
MAX_JPEG_BYTES = (MAX_SNAPSHOT_BYTES - 4096) * 3 // 4


def fit_jpeg(jpeg: bytes, max_bytes: int = MAX_JPEG_BYTES) -> bytes:
    """``jpeg`` itself if small enough, else the same picture re-encoded smaller."""
    if len(jpeg) <= max_bytes:
        return jpeg
    from PIL import Image

    img = Image.open(io.BytesIO(jpeg))
    img.load()
    width, height = img.size
    for step in range(1, 8):
        scale = 0.75**step
        smaller = img.resize((max(1, int(width * scale)), max(1, int(height * scale))))
        buf = io.BytesIO()
        smaller.convert("RGB").save(buf, format="JPEG", quality=70)
        if buf.tell() <= max_bytes:
            _LOG.warning("snapshot of %d bytes scaled to %dx%d to fit", len(jpeg), *smaller.size)
            return buf.getvalue()
    raise ValueError(f"snapshot of {len(jpeg)} bytes cannot be made to fit {max_bytes}")
