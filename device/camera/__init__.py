"""Snapshots on events: the picamera2 adapter on a Pi, a stand-in elsewhere.

picamera2 is imported only inside :class:`~device.camera.picamera.PiCamera`, so this package
imports on any machine. Each camera module is imported only when that camera is made: the
stand-in needs Pillow (several MiB resident in a unit that must stay under 60 MB), which a
unit with a Pi camera or none never loads.
"""
from __future__ import annotations

import logging
from datetime import tzinfo
from typing import TYPE_CHECKING

from device.camera.base import Camera, CameraUnavailable
from device.config import CameraSection

if TYPE_CHECKING:
    from device.camera.picamera import PiCamera
    from device.camera.standin import StandInCamera

__all__ = ["Camera", "CameraUnavailable", "PiCamera", "StandInCamera", "make_camera"]

_LOG = logging.getLogger(__name__)

_LAZY = {"PiCamera": "device.camera.picamera", "StandInCamera": "device.camera.standin"}


def __getattr__(name: str):
    """``from device.camera import StandInCamera`` still works; the module loads on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_camera(section: CameraSection, station: str, *, tz: tzinfo | None = None) -> Camera | None:
    """The unit's camera from its ``camera`` section; None for ``type: none``.

    ``picamera2`` off the Pi raises CameraUnavailable with the reason.
    """
    if section.type == "none":
        return None
    if section.type == "standin":
        from device.camera.standin import StandInCamera

        _LOG.info("camera: stand-in %dx%d", section.width, section.height)
        return StandInCamera(section.width, section.height, section.jpeg_quality, station, tz=tz)
    from device.camera.picamera import PiCamera

    return PiCamera(section.width, section.height, section.jpeg_quality)
