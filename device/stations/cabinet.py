"""Key-cabinet logic: badge taps and door edges in, audit events and lock actions out.

- An allowed tap unlocks for ``unlock_s`` seconds (allow_flag: allowed but flagged, e.g. not
  the designated holder).
- The door opening inside that window starts one key use by that person; closing ends it
  (``key.used`` with the times and duration).
- The door opening without a valid window is ``door.forced``.
- Open longer than ``held_open_s`` is ``door.held_open`` (once per opening).
- A refused or unknown badge is ``badge.denied``; the lock is not touched.
- An unlock window that ends with the door never opened is ``unlock.expired``.
- Two grants in a row: another person's allowed tap while a window is open starts that
  person's window, and the first one's ends with ``unlock.ended`` (``reason: superseded``,
  naming both): the door opening now is the second person's use, never the first's. The same
  badge again renews its own window.
- The same badge again within ``repeat_s`` (see device/stations/repeat.py) is the same tap: its
  feedback again, nothing else.
- A purpose button (input ``purpose:<code>``, where fitted) pressed within ``purpose_s`` of a
  use's end says what that use was for: ``key.purpose`` with the code and the use's unlock time,
  under the use's badge and person. Pressed with no use just ended, it is refused (feedback).

Times: ``now`` is monotonic seconds (for durations), ``wall`` the aware wall-clock time that
goes into the event.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from device import event_data as ev
from device.config import Pin, PinsSection
from device.stations.base import StationBase, StationUnit
from device.stations.effects import Effect, Emit, Feedback, Lock, Unlock
from device.stations.repeat import RepeatWindow
from device.wire import PolicyEntry
from kagiban.configfile import FieldProblem
from kagiban.wire import check_id


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


# How long after a use's end its purpose button may still be pressed (seconds).
PURPOSE_S = 120.0
PURPOSE_PREFIX = "purpose:"


class CabinetLogic(StationBase):
    """State of one key cabinet."""

    def __init__(
        self,
        *,
        unlock_s: float,
        held_open_s: float,
        repeat_s: float = 0.0,
        purpose_s: float = PURPOSE_S,
    ):
        self.unlock_s = unlock_s
        self.purpose_s = purpose_s
        self._ended: tuple[_Grant, float] | None = None  # the last use's grant and when it ended
        self.held_open_s = held_open_s
        self._repeats = RepeatWindow(repeat_s)
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

    def badge(self, badge: str, entry: PolicyEntry, now: float, wall: datetime) -> list[Effect]:
        """A badge was tapped and the policy answered ``entry``."""
        return self._repeats.tap(badge, now, lambda: self._answer(badge, entry, now, wall))

    def _answer(self, badge: str, entry: PolicyEntry, now: float, wall: datetime) -> list[Effect]:
        if entry.decision == "deny":
            return [
                Feedback("denied"),
                Emit.of(ev.BadgeDenied(reason=entry.reason, decision=entry.decision), wall, badge, entry.person, snapshot=True),
            ]
        flagged = entry.decision == "allow_flag"
        granted = ev.BadgeGranted(reason=entry.reason, flagged=flagged, unlock_s=self.unlock_s,
                                  decision=entry.decision)
        effects: list[Effect] = [Feedback("granted"), Emit.of(granted, wall, badge, entry.person)]
        if self.door_open:
            # Already open: nothing to unlock; the tap is recorded against the opening.
            return effects
        ended: list[Effect] = []
        old = self._grant
        if old is not None and now > old.until:
            # Its window ran out before this tap (tick() had not run yet); the relay stays on.
            self._grant = None
            ended.append(self._expired(old, wall))
        elif old is not None and old.badge == badge:
            # The same person again: their window starts afresh; unlocked since the first tap.
            self._grant = _Grant(badge, entry.person, flagged, entry.reason, old.at, now + self.unlock_s)
            return [Unlock()] + effects
        elif old is not None:
            # Another person's tap takes the window over: the first grant ends unused, and
            # says so, so the ledger never gives the first person the second one's use.
            ended.append(Emit.of(ev.UnlockEnded(
                reason="superseded", unlocked_at=old.at, unlock_s=self.unlock_s,
                by_badge=badge, by_person=entry.person, flagged=old.flagged), wall, old.badge, old.person))
        self._grant = _Grant(badge, entry.person, flagged, entry.reason, wall, now + self.unlock_s)
        return ended + [Unlock()] + effects

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
            return [Lock(), Emit.of(ev.DoorForced(), wall, snapshot=True)]
        opened = ev.DoorOpened(authorised=True, flagged=grant.flagged)
        # The door is open: relock now so the latch holds when it closes.
        return [Lock(), Emit.of(opened, wall, grant.badge, grant.person, snapshot=True)]

    def _closed(self, now: float, wall: datetime) -> list[Effect]:
        opening = self._opening
        self._opening = None
        if opening is None:
            return [Emit.of(ev.DoorClosed(authorised=False, open_s=None), wall)]
        open_s = round(now - opening.since, 3)
        grant = opening.grant
        effects: list[Effect] = [
            Emit.of(
                ev.DoorClosed(authorised=grant is not None, open_s=open_s),
                wall,
                grant.badge if grant else None,
                grant.person if grant else None,
            )
        ]
        if grant is not None:
            used = ev.KeyUsed(unlocked_at=grant.at, opened_at=opening.at, closed_at=wall, duration_s=open_s,
                              flagged=grant.flagged, reason=grant.reason)
            effects.append(Emit.of(used, wall, grant.badge, grant.person))
            self._ended = (grant, now)
        return effects

    def input(self, name: str, active: bool, now: float, wall: datetime) -> list[Effect]:
        """A purpose button (``purpose:<code>``; active = pressed) names the work of the use that
        just ended."""
        if not name.startswith(PURPOSE_PREFIX) or not active:
            return []
        ended = self._ended
        if ended is None or now - ended[1] > self.purpose_s:
            return [Feedback("denied")]  # no use to name: nothing is recorded
        grant = ended[0]
        purpose = ev.KeyPurpose(purpose=name[len(PURPOSE_PREFIX):], unlocked_at=grant.at)
        return [Feedback("granted"), Emit.of(purpose, wall, grant.badge, grant.person)]

    def tick(self, now: float, wall: datetime) -> list[Effect]:
        """Time passed: end unlock windows, notice a door held open."""
        effects: list[Effect] = []
        if self._grant is not None and now > self._grant.until:
            grant = self._grant
            self._grant = None
            effects += [Lock(), self._expired(grant, wall)]
        op = self._opening
        if op is not None and not op.held_reported and now - op.since >= self.held_open_s:
            op.held_reported = True
            g = op.grant
            held = ev.DoorHeldOpen(open_s=round(now - op.since, 3), limit_s=self.held_open_s,
                                   authorised=self._authorised(op))
            effects.append(Emit.of(held, wall, g.badge if g else None, g.person if g else None, snapshot=True))
        return effects

    def _expired(self, grant: _Grant, wall: datetime) -> Emit:
        """``unlock.expired``: the window of ``grant`` ended with the door never opened."""
        expired = ev.UnlockExpired(unlock_s=self.unlock_s, unlocked_at=grant.at, flagged=grant.flagged)
        return Emit.of(expired, wall, grant.badge, grant.person)

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


class CabinetPins(PinsSection, kw_only=True):
    """A key cabinet cannot work without its door's reed switch and its lock relay. Optional
    purpose buttons (to ground) say what a use that just ended was for: work code -> pin, the
    codes of the site's ``key_work`` list in the hub file."""

    door: Pin
    lock: Pin
    purpose_buttons: dict[str, Pin] = {}

    def __post_init__(self) -> None:
        try:
            for code in self.purpose_buttons:
                check_id(code, "purpose button code")
        except ValueError as exc:
            raise FieldProblem("purpose_buttons", str(exc)) from exc
        if len(set(self.purpose_buttons.values())) != len(self.purpose_buttons):
            raise FieldProblem("purpose_buttons", "two purpose buttons share a pin")


class CabinetUnit(StationUnit, kw_only=True):
    """A key cabinet's unit file: door switch and lock relay required."""

    KIND = "cabinet"
    pins: CabinetPins

    def make_logic(self) -> CabinetLogic:
        t = self.timings
        return CabinetLogic(unlock_s=t.unlock_s, held_open_s=t.held_open_s, repeat_s=self.reader.repeat_window_s)


UNIT = CabinetUnit
