"""The Raspberry Pi camera through picamera2: the only module that imports picamera2.

picamera2 needs the libcamera bindings of Raspberry Pi OS (``python3-picamera2``); elsewhere
the constructor raises CameraUnavailable instead of an import traceback.
"""
from __future__ import annotations

import io
import logging
import threading

from device.camera.base import CameraUnavailable
from device.missing_library import LibraryMissing

_LOG = logging.getLogger(__name__)

_FIX = ("it comes with Raspberry Pi OS (apt install python3-picamera2; a venv needs "
        "--system-site-packages to see it); elsewhere set camera.type: standin or none")


def require_picamera2() -> None:
    """Import picamera2; LibraryMissing (``camera.type``) if this machine cannot."""
    try:
        import picamera2  # noqa: F401
    except Exception as exc:  # ImportError off the Pi; libcamera mismatches raise others
        raise LibraryMissing("camera.type", f"picamera2 cannot be imported ({exc})", _FIX) from exc


class PiCamera:
    """A Pi camera module kept running in a still configuration; captures in-memory JPEGs."""

    def __init__(self, width: int, height: int, quality: int) -> None:
        try:
            from picamera2 import Picamera2
        except Exception as exc:  # ImportError off the Pi; libcamera mismatches raise others
            raise CameraUnavailable(f"picamera2 cannot be imported ({exc}); {_FIX}") from exc
        try:
            camera = Picamera2()
        except Exception as exc:  # no camera attached, or held by another process
            raise CameraUnavailable(f"no usable Pi camera: {exc}") from exc
        try:
            camera.configure(camera.create_still_configuration(main={"size": (width, height)}))
            camera.options["quality"] = quality
            # Started once: each capture then takes a frame without restarting the pipeline.
            camera.start()
        except Exception as exc:
            camera.close()
            raise CameraUnavailable(f"Pi camera could not be started: {exc}") from exc
        self._camera = camera
        self._lock = threading.Lock()
        _LOG.info("Pi camera ready: %dx%d, JPEG quality %d", width, height, quality)

    def capture(self, label: str) -> bytes:
        """A JPEG taken now (``label`` is only logged)."""
        buf = io.BytesIO()
        with self._lock:
            self._camera.capture_file(buf, format="jpeg")
        _LOG.debug("snapshot %s: %d bytes", label, buf.tell())
        return buf.getvalue()

    def close(self) -> None:
        """Stop and release the camera."""
        with self._lock:
            try:
                self._camera.stop()
            finally:
                self._camera.close()
