"""Hardware libraries a unit file asks for, checked before anything starts.

A library that cannot be imported on this machine (``pins.factory: lgpio`` without lgpio,
``camera.type: picamera2`` without Raspberry Pi OS's picamera2, ``reader.type: nfcpy`` without
nfcpy) is a configuration error for this machine: the agent stops with one line naming the
YAML key and the fix, and ``kagiban device`` exits 2 so systemd does not restart it in a loop
(``RestartPreventExitStatus=2``). A library that loads but whose hardware is missing or fails
is not an error here: the station runs degraded and says so in its heartbeat.
"""
from __future__ import annotations

import logging

from device.config import DeviceConfig

_LOG = logging.getLogger(__name__)


def check(cfg: DeviceConfig) -> None:
    """Import every hardware library ``cfg`` names; LibraryMissing for the first that fails.

    Pins first: a unit that cannot drive its pins is the most urgent thing to fix.
    """
    if cfg.pins.factory not in (None, "mock"):
        from device.sensors.pins import require_pin_factory

        require_pin_factory(cfg.pins.factory)
    if cfg.reader.type == "nfcpy":
        from device.sensors.nfc_reader import require_nfcpy

        require_nfcpy()
    if cfg.camera.type == "picamera2":
        from device.camera.picamera import require_picamera2

        require_picamera2()
