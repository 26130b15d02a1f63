"""Snapshots on events: the picamera2 adapter on a Pi, a stand-in elsewhere.

picamera2 is imported only inside :class:`~device.camera.picamera.PiCamera`, so this package
imports on any machine. Each camera module is imported only when that camera is made: the
stand-in needs Pillow (several MiB resident in a unit that must stay under 60 MB), which a
unit with a Pi camera or none never loads.

The agent never calls a camera directly: :func:`guarded_camera` wraps the unit's camera in a
:class:`~device.camera.guard.CameraGuard` (time limit, reopening, health).
"""
from __future__ import annotations

import logging
from datetime import tzinfo
from typing import TYPE_CHECKING

from device.camera.base import Camera, CameraUnavailable
from device.camera.guard import CameraGuard, SnapshotFailure
from device.config import CameraSection

if TYPE_CHECKING:
    from device.camera.picamera import PiCamera
    from device.camera.standin import StandInCamera

__all__ = ["Camera", "CameraGuard", "CameraUnavailable", "PiCamera", "SnapshotFailure", "StandInCamera",
           "guarded_camera", "make_camera"]

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

    CameraUnavailable if it cannot be opened now (``picamera2`` off the Pi, no camera attached,
    the stand-in's ``missing`` fault).
    """
    if section.type == "none":
        return None
    if section.type == "standin":
        from device.camera.standin import StandInCamera

        _LOG.info("camera: stand-in %dx%d%s", section.width, section.height,
                  f", fault: {section.fault}" if section.fault else "")
        return StandInCamera(section.width, section.height, section.jpeg_quality, station, tz=tz,
                             fault=section.fault)
    from device.camera.picamera import PiCamera

    return PiCamera(section.width, section.height, section.jpeg_quality)


def guarded_camera(section: CameraSection, station: str, *, tz: tzinfo | None = None,
                   camera: Camera | None = None) -> CameraGuard | None:
    """The unit's camera (or ``camera``, if given) behind a CameraGuard; None for ``type: none``
    and no ``camera``. Nothing is opened here: the guard opens it on the snapshot worker."""
    if camera is None and section.type == "none":
        return None

    def open_camera() -> Camera:
        if camera is not None:
            return camera
        made = make_camera(section, station, tz=tz)
        assert made is not None
        return made

    return CameraGuard(open_camera, capture_timeout_s=section.capture_timeout_s,
                       retry_max_s=section.retry_max_s)
