"""Snapshots on events: the picamera2 adapter on a Pi, a stand-in elsewhere.

picamera2 is imported only inside :class:`~device.camera.picamera.PiCamera`, so this package
imports on any machine.
"""
from __future__ import annotations

import logging
from datetime import tzinfo

from device.camera.base import Camera, CameraUnavailable
from device.camera.picamera import PiCamera
from device.camera.standin import StandInCamera
from device.config import CameraSection

__all__ = ["Camera", "CameraUnavailable", "PiCamera", "StandInCamera", "make_camera"]

_LOG = logging.getLogger(__name__)


def make_camera(section: CameraSection, station: str, *, tz: tzinfo | None = None) -> Camera | None:
    """The unit's camera from its ``camera`` section; None for ``type: none``.

    ``picamera2`` off the Pi raises CameraUnavailable with the reason.
    """
    if section.type == "none":
        return None
    if section.type == "standin":
        _LOG.info("camera: stand-in %dx%d", section.width, section.height)
        return StandInCamera(section.width, section.height, section.jpeg_quality, station, tz=tz)
    return PiCamera(section.width, section.height, section.jpeg_quality)
