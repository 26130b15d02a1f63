"""Restricted-door logic: badge taps and reed-switch edges in, audit events and lock actions out.

The back office's door: a reed switch, and optionally a badge reader and a lock relay.

- An allowed tap (allow_flag: allowed but flagged) releases the lock for ``unlock_s`` seconds
  (if the door has a lock) and makes the next opening within that window authorised:
  ``door.opened`` with the person (snapshot).
- With a reader, an opening without such a tap is ``door.intrusion`` (snapshot): nobody badged
  in. Without a reader nobody can badge, so every opening is recorded as ``door.opened`` with
  ``authorised: null``; the hub still judges it against business hours.
- Open longer than ``held_open_s`` is ``door.held_open`` (once per opening, snapshot).
- Closing is ``door.closed`` with how long the door was open and who opened it.
- A refused or unknown badge is ``badge.denied`` (snapshot); the lock is not touched.
- An unlock window that ends with the door never opened is ``unlock.expired``; one taken over
  by another person's tap ends with ``unlock.ended`` (``reason: superseded``), as at a cabinet.
- The same badge again within ``repeat_s`` gets its feedback again and nothing else.

After-hours openings (authorised ones too) are the hub's rule: it knows the site's hours and
holidays, and the station may be deciding offline.

Times: ``now`` is monotonic seconds (for durations), ``wall`` the aware wall-clock time that
goes into the event.
"""
from __future__ import annotations

import logging
from datetime import datetime

from device import event_data as ev
from device.config import Pin, PinsSection
from device.stations.base import StationUnit
from device.stations.cabinet import CabinetLogic, _Opening
from device.stations.effects import Effect, Emit, Lock

_LOG = logging.getLogger(__name__)


class DoorLogic(CabinetLogic):
    """State of one restricted-area door: a cabinet's badge, unlock-window and held-open rules,
    with its own meaning of an opening and a closing."""

    def __init__(
        self,
        *,
        unlock_s: float,
        held_open_s: float,
        has_reader: bool = True,
        repeat_s: float = 0.0,
    ):
        super().__init__(unlock_s=unlock_s, held_open_s=held_open_s, repeat_s=repeat_s)
        self.has_reader = has_reader

    def _opened(self, now: float, wall: datetime) -> list[Effect]:
        grant = self._grant if self._grant and now <= self._grant.until else None
        self._grant = None
        if grant is not None:
            self._opening = _Opening(wall, now, grant)
            opened = ev.DoorOpened(authorised=True, flagged=grant.flagged)
            # Relock now so the latch holds when the door swings shut.
            return [Lock(), Emit.of(opened, wall, grant.badge, grant.person, snapshot=True)]
        if not self.has_reader:
            self._opening = _Opening(wall, now, None)
            return [Emit.of(ev.DoorOpened(authorised=None, reader=False), wall, snapshot=True)]
        self._opening = _Opening(wall, now, None, intrusion=True)
        return [Lock(), Emit.of(ev.DoorIntrusion(authorised=False), wall, snapshot=True)]

    def _closed(self, now: float, wall: datetime) -> list[Effect]:
        op = self._opening
        self._opening = None
        if op is None:
            return [Emit.of(ev.DoorClosed(authorised=False, open_s=None), wall)]
        g = op.grant
        closed = ev.DoorClosed(authorised=self._authorised(op), open_s=round(now - op.since, 3), opened_at=op.at)
        return [Emit.of(closed, wall, g.badge if g else None, g.person if g else None)]

    def _authorised(self, op: _Opening) -> bool | None:
        # None: a door without a reader cannot tell who opened it.
        return True if op.grant else (False if op.intrusion else None)

    def input(self, name: str, active: bool, now: float, wall: datetime) -> list[Effect]:
        """A door has no extra inputs."""
        _LOG.debug("input %s is not used by a door", name)
        return []


class DoorPins(PinsSection, kw_only=True):
    """A restricted door cannot work without its reed switch (the lock is optional)."""

    door: Pin


class DoorUnit(StationUnit, kw_only=True):
    """A restricted-area door's unit file: its reed switch required."""

    KIND = "door"
    pins: DoorPins

    def make_logic(self) -> DoorLogic:
        t = self.timings
        # Without a reader nobody can badge in, so an opening is not by itself an intrusion.
        return DoorLogic(unlock_s=t.unlock_s, held_open_s=t.held_open_s,
                         has_reader=self.reader.type != "none", repeat_s=self.reader.repeat_window_s)


UNIT = DoorUnit
