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
- An unlock window that ends with the door never opened is ``unlock.expired``.

After-hours openings (authorised ones too) are the hub's rule: it knows the site's hours and
holidays, and the station may be deciding offline.

Times: ``now`` is monotonic seconds (for durations), ``wall`` the aware wall-clock time that
goes into the event.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from device.stations.effects import Effect, Emit, Feedback, Lock, Unlock
from kagiban.protocol import PolicyEntry

_LOG = logging.getLogger(__name__)


@dataclass
class _Grant:
    badge: str
    person: str | None
    flagged: bool
    at: datetime
    until: float


@dataclass
class _Opening:
    at: datetime
    since: float
    grant: _Grant | None
    intrusion: bool
    held_reported: bool = False


class DoorLogic:
    """State of one restricted-area door."""

    def __init__(
        self,
        *,
        unlock_s: float,
        held_open_s: float,
        decide: Callable[[str], PolicyEntry],
        has_reader: bool = True,
    ):
        self.unlock_s = unlock_s
        self.held_open_s = held_open_s
        self.decide = decide
        self.has_reader = has_reader
        self.door_open = False
        self._grant: _Grant | None = None
        self._opening: _Opening | None = None

    def assume_door(self, is_open: bool, now: float, wall: datetime) -> None:
        """The door state found at start: an opening of unknown origin. The held-open limit
        still applies; nothing is recorded as an intrusion (it may have been open for hours)."""
        self.door_open = is_open
        self._opening = _Opening(wall, now, None, False) if is_open else None

    @property
    def unlocked(self) -> bool:
        return self._grant is not None

    def badge(self, badge: str, now: float, wall: datetime) -> list[Effect]:
        """A badge was tapped."""
        entry = self.decide(badge)
        if entry.decision == "deny":
            return [
                Feedback("denied"),
                Emit("badge.denied", wall, badge, entry.person, {"reason": entry.reason}, snapshot=True),
            ]
        flagged = entry.decision == "allow_flag"
        data = {"reason": entry.reason, "flagged": flagged, "unlock_s": self.unlock_s}
        effects: list[Effect] = [Feedback("granted"), Emit("badge.granted", wall, badge, entry.person, data)]
        if self.door_open:
            # Already open (someone held it): recorded, nothing to unlock.
            return effects
        self._grant = _Grant(badge, entry.person, flagged, wall, now + self.unlock_s)
        return [Unlock()] + effects

    def door(self, is_open: bool, now: float, wall: datetime) -> list[Effect]:
        """The (debounced) reed switch changed."""
        if is_open == self.door_open:
            return []
        self.door_open = is_open
        return self._opened(now, wall) if is_open else self._closed(now, wall)

    def _opened(self, now: float, wall: datetime) -> list[Effect]:
        grant = self._grant if self._grant and now <= self._grant.until else None
        self._grant = None
        if grant is not None:
            self._opening = _Opening(wall, now, grant, False)
            data = {"authorised": True, "flagged": grant.flagged}
            # Relock now so the latch holds when the door swings shut.
            return [Lock(), Emit("door.opened", wall, grant.badge, grant.person, data, snapshot=True)]
        if not self.has_reader:
            self._opening = _Opening(wall, now, None, False)
            return [Emit("door.opened", wall, data={"authorised": None, "reader": False}, snapshot=True)]
        self._opening = _Opening(wall, now, None, True)
        return [Lock(), Emit("door.intrusion", wall, data={"authorised": False}, snapshot=True)]

    def _closed(self, now: float, wall: datetime) -> list[Effect]:
        op = self._opening
        self._opening = None
        if op is None:
            return [Emit("door.closed", wall, data={"authorised": False, "open_s": None})]
        g = op.grant
        data = {
            "authorised": True if g else (False if op.intrusion else None),
            "open_s": round(now - op.since, 3),
            "opened_at": op.at.isoformat(),
        }
        return [Emit("door.closed", wall, g.badge if g else None, g.person if g else None, data)]

    def tick(self, now: float, wall: datetime) -> list[Effect]:
        """Time passed: end unlock windows, notice a door held open."""
        effects: list[Effect] = []
        if self._grant is not None and now > self._grant.until:
            g = self._grant
            self._grant = None
            effects += [Lock(), Emit("unlock.expired", wall, g.badge, g.person, {"unlock_s": self.unlock_s})]
        op = self._opening
        if op is not None and not op.held_reported and now - op.since >= self.held_open_s:
            op.held_reported = True
            g = op.grant
            effects.append(Emit(
                "door.held_open", wall, g.badge if g else None, g.person if g else None,
                {"open_s": round(now - op.since, 3), "limit_s": self.held_open_s,
                 "authorised": True if g else (False if op.intrusion else None)},
                snapshot=True,
            ))
        return effects

    def next_deadline(self) -> float | None:
        """When tick() next has something to do (monotonic seconds), if ever."""
        times = []
        if self._grant is not None:
            times.append(self._grant.until + 1e-3)
        if self._opening is not None and not self._opening.held_reported:
            times.append(self._opening.since + self.held_open_s)
        return min(times) if times else None

    def input(self, name: str, active: bool, now: float, wall: datetime) -> list[Effect]:
        """A door has no extra inputs."""
        _LOG.debug("input %s is not used by a door", name)
        return []
