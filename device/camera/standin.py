"""A camera for machines without one: a real JPEG of a labelled frame.

The frame shows the station, the event label and the local time with its UTC offset, so a
snapshot in the hub's web page or an alert reads like a real one and is obviously not a photo.

Memory: Pillow is imported at the first capture, not when the camera is made, and only its
core (Image, and the JPEG encoder at the first save). The text is drawn from the 5x7 pixel
font below, scaled up whole pixels at a time, like a camera's on-screen display. Drawing with
ImageDraw and a TrueType font would load FreeType and HarfBuzz as well: about 3 MiB more
resident for a unit that must stay under 60 MB (see the station footprint in
docs/performance.md).

Fault modes (``fault``, for tests and simulated units only: ``camera.fault`` in a unit file
with ``type: standin``) make it behave like a broken camera:

- ``missing``: opening it raises CameraUnavailable, as with no camera attached;
- ``raise``: every capture raises CameraError;
- ``hang``: every capture blocks until :meth:`StandInCamera.unhang` (a stuck driver; closing
  does not wake it, as closing does not wake a stuck real one).
"""
from __future__ import annotations

import io
import logging
import threading
from datetime import datetime, tzinfo
from typing import Literal

from device.camera.base import CameraUnavailable

_LOG = logging.getLogger(__name__)

_BACKGROUND = (38, 44, 52)
_GRID = (58, 66, 78)
_TEXT = (240, 240, 240)
_ACCENT = (255, 196, 0)

# 5 columns by 7 rows per glyph, rows separated by spaces. Text is shown in capitals (ids and
# event kinds are ASCII); anything else is shown as "?".
_GLYPHS = {
    " ": "..... ..... ..... ..... ..... ..... .....",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "###.. #..#. #...# #...# #...# #..#. ###..",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "-": "..... ..... ..... ##### ..... ..... .....",
    "_": "..... ..... ..... ..... ..... ..... #####",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "/": "..... ....# ...#. ..#.. .#... #.... .....",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
}
_GLYPH_W, _GLYPH_H = 5, 7
_ADVANCE = _GLYPH_W + 1  # a blank column between letters
# Each glyph as 7 rows of 6 mask bytes (255 = ink), the spacing column included.
_ROWS = {ch: [bytes(255 if c == "#" else 0 for c in row + ".") for row in rows.split()]
         for ch, rows in _GLYPHS.items()}


def _text_width(text: str, scale: int) -> int:
    """Pixels ``text`` takes at ``scale`` (without the trailing spacing column)."""
    return (len(text) * _ADVANCE - 1) * scale


def _scale_to_fit(lines: list[str], target_px: int, room: int) -> int:
    """The largest whole-pixel scale at which every line is at most ``target_px`` tall and
    ``room`` wide; at least 1 (a name too long for the frame is cut at its edge)."""
    widest = max(_text_width(line, 1) for line in lines)
    return max(1, min(target_px // _GLYPH_H, room // max(1, widest)))


def _draw_text(image, xy: tuple[int, int], text: str, scale: int, colour: tuple[int, int, int],
               room: int) -> None:
    """Paint ``text`` (top left at ``xy``) in ``colour`` onto ``image``, cut at ``room`` pixels
    wide so a long name stops short of the frame's border."""
    from PIL import Image

    text = "".join(ch if ch in _ROWS else "?" for ch in text.upper())
    if not text:
        return
    width = len(text) * _ADVANCE
    mask = Image.frombytes("L", (width, _GLYPH_H),
                           b"".join(_ROWS[ch][row] for row in range(_GLYPH_H) for ch in text))
    if scale > 1:
        mask = mask.resize((width * scale, _GLYPH_H * scale), Image.Resampling.NEAREST)
    if mask.width > room:
        mask = mask.crop((0, 0, room, mask.height))
    image.paste(colour, xy, mask)


Fault = Literal["missing", "raise", "hang"]


class CameraError(RuntimeError):
    """A capture failed (the stand-in's ``raise`` fault)."""


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
        fault: Fault | None = None,
    ) -> None:
        if fault == "missing":
            raise CameraUnavailable("stand-in camera: no camera attached (fault: missing)")
        self.fault = fault
        self._unhang = threading.Event()
        self._size = (width, height)
        self._quality = quality
        self._station = station
        self._tz = tz

    def capture(self, label: str) -> bytes:
        """A JPEG showing the station, ``label`` and the time now (local, with offset)."""
        if self.fault == "raise":
            raise CameraError(f"stand-in camera: capture of {label} failed (fault: raise)")
        if self.fault == "hang":
            _LOG.info("stand-in camera: capture of %s hangs (fault: hang)", label)
            self._unhang.wait()
            raise CameraError("stand-in camera: released from a hang")
        from PIL import Image

        now = datetime.now(self._tz) if self._tz is not None else datetime.now().astimezone()
        stamp = now.isoformat(sep=" ", timespec="seconds")
        width, height = self._size
        margin = max(6, width // 32)
        room = width - 2 * margin

        image = Image.new("RGB", self._size, _BACKGROUND)
        # A faint grid, so the frame is plainly a picture area and not a blank page.
        step = max(16, min(width, height) // 8)
        for x in range(0, width, step):
            image.paste(_GRID, (x, 0, x + 1, height))
        for y in range(0, height, step):
            image.paste(_GRID, (0, y, width, y + 1))
        border = max(2, width // 200)
        for box in ((0, 0, width, border), (0, height - border, width, height),
                    (0, 0, border, height), (width - border, 0, width, height)):
            image.paste(_ACCENT, box)

        title = "STAND-IN CAMERA"
        _draw_text(image, (margin, margin), title, _scale_to_fit([title], max(8, height // 16), room), _ACCENT,
                   room)
        lines = [self._station, label, stamp]
        scale = _scale_to_fit(lines, max(10, height // 9), room)
        line_h = (_GLYPH_H + 3) * scale
        y = (height - line_h * len(lines)) // 2
        for text, colour in zip(lines, (_TEXT, _ACCENT, _TEXT)):
            _draw_text(image, (margin, y), text, scale, colour, room)
            y += line_h

        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=self._quality)
        _LOG.debug("stand-in snapshot %s: %d bytes", label, buf.tell())
        return buf.getvalue()

    def unhang(self) -> None:
        """Let every capture hung by the ``hang`` fault return (with an error)."""
        self._unhang.set()

    def close(self) -> None:
        """Nothing to release."""
