"""The camera seam: one JPEG snapshot per event."""
from __future__ import annotations

import logging
from typing import Protocol

_LOG = logging.getLogger(__name__)


class CameraUnavailable(RuntimeError):
    """The configured camera cannot be opened (not attached, not detected, held elsewhere)."""


class Camera(Protocol):
    """Something that takes still photos."""

    def capture(self, label: str) -> bytes:
        """A JPEG photo taken now; ``label`` names the event (e.g. ``"door.forced"``)."""

    def close(self) -> None:
        """Release the camera."""
