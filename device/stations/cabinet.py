"""Key-cabinet logic: badge taps and door edges in, audit events and lock actions out.

- An allowed tap unlocks for ``unlock_s`` seconds (allow_flag: allowed but flagged, e.g. not
  the designated holder).
- The door opening inside that window starts one key use by that person; closing ends it
  (``key.used`` with the times and duration).
- The door opening without a valid window is ``door.forced``.
- Open longer than ``held_open_s`` is ``door.held_open`` (once per opening).
- A refused or unknown badge is ``badge.denied``; the lock is not touched.
- An unlock window that ends with the door never opened is ``unlock.expired``.

Times: ``now`` is monotonic seconds (for durations), ``wall`` the aware wall-clock time that
goes into the event.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from device.stations.effects import Effect, Emit, Feedback, Lock, Unlock
from kagiban.protocol import PolicyEntry


@dataclass
class _Grant:
    badge: str
    person: str | None
    flagged: bool
    reason: str
    at: datetime
    until: float


@dataclass
class _Opening:
    at: datetime
    since: float
    grant: _Grant | None
    intrusion: bool = False  # a restricted door's opening without a tap (see door.py)
    held_reported: bool = False


class CabinetLogic:
    """State of one key cabinet."""

    def __init__(
        self,
        *,
        unlock_s: float,
        held_open_s: float,
        decide: Callable[[str], PolicyEntry],
    ):
        self.unlock_s = unlock_s
        self.held_open_s = held_open_s
        self.decide = decide
        self.door_open = False
        self._grant: _Grant | None = None
        self._opening: _Opening | None = None

    def assume_door(self, is_open: bool, now: float, wall: datetime) -> None:
        """The door state found at start; an open door is an opening of unknown origin, so the
        held-open limit still applies, but nothing is recorded as forced."""
        self.door_open = is_open
        self._opening = _Opening(wall, now, None) if is_open else None

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
            # Already open: nothing to unlock; the tap is recorded against the opening.
            return effects
        self._grant = _Grant(badge, entry.person, flagged, entry.reason, wall, now + self.unlock_s)
        return [Unlock()] + effects

    def door(self, is_open: bool, now: float, wall: datetime) -> list[Effect]:
        """The (debounced) door switch changed."""
        if is_open == self.door_open:
            return []
        self.door_open = is_open
        if is_open:
            return self._opened(now, wall)
        return self._closed(now, wall)

    def _opened(self, now: float, wall: datetime) -> list[Effect]:
        grant = self._grant if self._grant and now <= self._grant.until else None
        self._grant = None
        self._opening = _Opening(wall, now, grant)
        if grant is None:
            return [Lock(), Emit("door.forced", wall, data={}, snapshot=True)]
        data = {"authorised": True, "flagged": grant.flagged}
        # The door is open: relock now so the latch holds when it closes.
        return [Lock(), Emit("door.opened", wall, grant.badge, grant.person, data, snapshot=True)]

    def _closed(self, now: float, wall: datetime) -> list[Effect]:
        opening = self._opening
        self._opening = None
        if opening is None:
            return [Emit("door.closed", wall, data={"authorised": False, "open_s": None})]
        open_s = round(now - opening.since, 3)
        grant = opening.grant
        effects: list[Effect] = [
            Emit(
                "door.closed",
                wall,
                grant.badge if grant else None,
                grant.person if grant else None,
                {"authorised": grant is not None, "open_s": open_s},
            )
        ]
        if grant is not None:
            effects.append(
                Emit(
                    "key.used",
                    wall,
                    grant.badge,
                    grant.person,
                    {
                        "unlocked_at": grant.at.isoformat(),
                        "opened_at": opening.at.isoformat(),
                        "closed_at": wall.isoformat(),
                        "duration_s": open_s,
                        "flagged": grant.flagged,
                        "reason": grant.reason,
                    },
                )
            )
        return effects

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
            effects.append(
                Emit(
                    "door.held_open",
                    wall,
                    g.badge if g else None,
                    g.person if g else None,
                    {"open_s": round(now - op.since, 3), "limit_s": self.held_open_s,
                     "authorised": self._authorised(op)},
                    snapshot=True,
                )
            )
        return effects

    def _authorised(self, op: _Opening) -> bool | None:
        """Whether an opening was authorised, as events report it."""
        return op.grant is not None

    def next_deadline(self) -> float | None:
        """When tick() next has something to do (monotonic seconds), if ever."""
        times = []
        if self._grant is not None:
            times.append(self._grant.until + 1e-3)
        if self._opening is not None and not self._opening.held_reported:
            times.append(self._opening.since + self.held_open_s)
        return min(times) if times else None
