"""A camera for machines without one: a real JPEG of a labelled frame.

The frame shows the station, the event label and the local time with its UTC offset, so a
snapshot in the hub's web page or an alert reads like a real one and is obviously not a photo.
"""
from __future__ import annotations

import io
import logging
import threading
from datetime import datetime, tzinfo

from PIL import Image, ImageDraw, ImageFont

_LOG = logging.getLogger(__name__)

_BACKGROUND = (38, 44, 52)
_GRID = (58, 66, 78)
_TEXT = (240, 240, 240)
_ACCENT = (255, 196, 0)


class StandInCamera:
    """Draws the station, the label and the time into a JPEG of the configured size."""

    def __init__(
        self,
        width: int,
        height: int,
        quality: int,
        station: str,
        *,
        tz: tzinfo | None = None,
    ) -> None:
        self._size = (width, height)
        self._quality = quality
        self._station = station
        self._tz = tz
        self._fonts: dict[int, ImageFont.ImageFont | ImageFont.FreeTypeFont] = {}
        self._lock = threading.Lock()

    def _font(self, px: int):
        if px not in self._fonts:
            # Pillow's bundled scalable font: no dependency on the machine's fonts.
            self._fonts[px] = ImageFont.load_default(size=px)
        return self._fonts[px]

    def _fitting_font(self, draw: ImageDraw.ImageDraw, lines: list[str], px: int, room: int):
        while px > 8 and max(draw.textlength(line, font=self._font(px)) for line in lines) > room:
            px -= 1
        return self._font(px)

    def capture(self, label: str) -> bytes:
        """A JPEG showing the station, ``label`` and the time now (local, with offset)."""
        now = datetime.now(self._tz) if self._tz is not None else datetime.now().astimezone()
        stamp = now.isoformat(sep=" ", timespec="seconds")
        width, height = self._size
        margin = max(6, width // 32)
        room = width - 2 * margin

        image = Image.new("RGB", self._size, _BACKGROUND)
        draw = ImageDraw.Draw(image)
        # A faint grid, so the frame is plainly a picture area and not a blank page.
        step = max(16, min(width, height) // 8)
        for x in range(0, width, step):
            draw.line([(x, 0), (x, height)], fill=_GRID)
        for y in range(0, height, step):
            draw.line([(0, y), (width, y)], fill=_GRID)
        border = max(2, width // 200)
        draw.rectangle([(0, 0), (width - 1, height - 1)], outline=_ACCENT, width=border)

        with self._lock:  # the font cache is shared by concurrent captures
            small = self._fitting_font(draw, ["STAND-IN CAMERA"], max(8, height // 16), room)
            lines = [self._station, label, stamp]
            big = self._fitting_font(draw, lines, max(10, height // 9), room)
        draw.text((margin, margin), "STAND-IN CAMERA", font=small, fill=_ACCENT)

        line_h = big.getbbox("Ag")[3] * 1.35
        y = (height - line_h * len(lines)) / 2
        for text, colour in zip(lines, (_TEXT, _ACCENT, _TEXT)):
            draw.text((margin, y), text, font=big, fill=colour)
            y += line_h

        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=self._quality)
        _LOG.debug("stand-in snapshot %s: %d bytes", label, buf.tell())
        return buf.getvalue()

    def close(self) -> None:
        """Nothing to release."""
