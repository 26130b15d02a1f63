"""The unit's inputs: door and tray contacts (gpiozero), the badge reader (nfcpy).

Each hardware library is imported only inside its adapter, so this package imports on any
machine. Each seam is a Protocol with a stand-in beside it:

- :class:`~device.sensors.door.DoorSwitch`: ``GpioDoorSwitch`` / ``StandInDoorSwitch``
- :class:`~device.sensors.badge.BadgeReader`: ``NfcpyReader`` / ``StandInReader``

Callbacks run on the adapter's own thread; the station hands them to its loop.
"""
from __future__ import annotations

import logging

from device.config import ReaderSection
from device.sensors.badge import BadgeReader, StandInReader
from device.sensors.nfc_reader import NfcpyReader

_LOG = logging.getLogger(__name__)


def make_reader(section: ReaderSection) -> BadgeReader | None:
    """The unit's badge reader from its ``reader`` section; None for ``type: none``."""
    if section.type == "none":
        return None
    if section.type == "standin":
        _LOG.info("badge reader: stand-in (taps come from software)")
        return StandInReader()
    _LOG.info("badge reader: nfcpy on %s", section.path)
    return NfcpyReader(section.path)
