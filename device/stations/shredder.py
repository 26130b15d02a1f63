"""Two-person shredder logic: badge taps, the stop button and the bin door in, power and
audit events out.

Two different authorised people must tap within ``pair_window_s`` of each other before the
shredder's power relay is switched on, so every shredding session names two people who
watched each other (the A ward's pairs, the B ward's シュレッダー管理簿).

- An authorised tap (allow or allow_flag) with nothing pending is ``shred.waiting``: the
  first person is waiting for a colleague.
- A second authorised tap by a different badge and person within the window switches the
  power on: ``shred.started`` with both people and badges (snapshot), for at most
  ``shred_max_s`` seconds.
- Not started, ``shred.refused`` with a reason, and the pair must begin again:
  ``same_badge`` (the first badge again), ``same_person`` (another badge of the same person),
  ``second_not_authorised`` (the second badge is refused by the policy),
  ``window_expired`` (nobody came within the window), ``bin_open`` (the bin door is open).
- A session ends (power off, ``shred.ended`` with both people, times and duration) when an
  authorised badge is tapped (``tap``), the stop button is pressed (``stop_button``), the
  maximum length is reached (``max_length``) or the bin door is opened (``bin_opened``).
- A refused badge is ``badge.denied`` (snapshot) and changes nothing else while a session
  runs: stopping is what the stop button is for.
- The bin door sensor (optional) is recorded as ``bin.opened`` / ``bin.closed``.

Whether the two were on the day's roster and whether the session ran after hours are judged
by the hub, which has the roster; the station only enforces "two different authorised badges".

Times: ``now`` is monotonic seconds (for windows and durations), ``wall`` the aware
wall-clock time that goes into the event.
"""
from __future__ import annotations

from typing import Any

import logging
from dataclasses import dataclass
from datetime import datetime

from device import event_data as ev
from device.config import Pin, PinsSection
from device.stations.base import StationBase, StationUnit
from device.stations.effects import Effect, Emit, Feedback, PowerOff, PowerOn
from device.stations.repeat import RepeatWindow
from device.wire import PolicyEntry

_LOG = logging.getLogger(__name__)

STOP_BUTTON = "stop_button"
BIN = "bin"


@dataclass
class _Tap:
    badge: str
    person: str | None
    flagged: bool
    reason: str
    at: datetime
    since: float


@dataclass
class _Session:
    first: _Tap
    second: _Tap
    at: datetime
    since: float
    until: float


class ShredderLogic(StationBase):
    """State of one two-person shredder."""

    def __init__(
        self,
        *,
        pair_window_s: float,
        shred_max_s: float,
        repeat_s: float = 0.0,
    ):
        self.pair_window_s = pair_window_s
        self._repeats = RepeatWindow(repeat_s)
        self.shred_max_s = shred_max_s
        # A shredder has no door of its own; the heartbeat reports it closed.
        self.door_open = False
        self.bin_open = False
        self._waiting: _Tap | None = None
        self._session: _Session | None = None

    @property
    def running(self) -> bool:
        """True while the power relay is on."""
        return self._session is not None

    # --- badges ---

    def badge(self, badge: str, entry: PolicyEntry, now: float, wall: datetime) -> list[Effect]:
        """A badge was tapped and the policy answered ``entry`` (the same badge again within
        the repeat window: its feedback again, nothing else). No door: a stray door pin
        changes nothing (StationBase.door)."""
        return self._repeats.tap(badge, now, lambda: self._answer(badge, entry, now, wall))

    def _answer(self, badge: str, entry: PolicyEntry, now: float, wall: datetime) -> list[Effect]:
        # A window that ran out before this tap is reported first, so the tap starts afresh.
        late = self.tick(now, wall) if self._due(now) else []
        return late + self._badge(badge, entry, now, wall)

    def _badge(self, badge: str, entry: PolicyEntry, now: float, wall: datetime) -> list[Effect]:
        if entry.decision == "deny":
            effects: list[Effect] = [
                Feedback("denied"),
                Emit.of(ev.BadgeDenied(reason=entry.reason, decision=entry.decision), wall, badge, entry.person, snapshot=True),
            ]
            first = self._waiting
            if first is not None and self._session is None:
                # The colleague's badge is refused: this pair cannot start the shredder.
                self._waiting = None
                effects.append(self._refused("second_not_authorised", wall, first, badge, entry.person))
            return effects
        flagged = entry.decision == "allow_flag"
        tap = _Tap(badge, entry.person, flagged, entry.reason, wall, now)
        granted = Emit.of(ev.BadgeGranted(reason=entry.reason, flagged=flagged, decision=entry.decision),
                          wall, badge, entry.person)
        if self._session is not None:
            return [Feedback("granted"), granted, *self._end("tap", now, wall, by=tap)]
        first = self._waiting
        if first is None:
            self._waiting = tap
            return [
                Feedback("granted"),
                granted,
                Emit.of(ev.ShredWaiting(window_s=self.pair_window_s), wall, badge, entry.person),
            ]
        self._waiting = None
        if badge == first.badge:
            return [Feedback("denied"), self._refused("same_badge", wall, first, badge, entry.person)]
        if first.person is not None and first.person == entry.person:
            return [Feedback("denied"), self._refused("same_person", wall, first, badge, entry.person)]
        if self.bin_open:
            return [Feedback("denied"), self._refused("bin_open", wall, first, badge, entry.person)]
        return [granted, *self._start(first, tap, now, wall)]

    def _refused(self, reason: str, wall: datetime, first: _Tap, badge: str | None,
                 person: str | None) -> Emit:
        refused = ev.ShredRefused(reason=reason, first_badge=first.badge, first_person=first.person,
                                  window_s=self.pair_window_s)
        # The event names the tap that was refused; for an expired window, the one who waited.
        return Emit.of(refused, wall, badge or first.badge, person if badge else first.person)

    def _start(self, first: _Tap, second: _Tap, now: float, wall: datetime) -> list[Effect]:
        self._session = _Session(first, second, wall, now, now + self.shred_max_s)
        started = ev.ShredStarted(
            people=[first.person, second.person],
            badges=[first.badge, second.badge],
            flagged=[first.flagged, second.flagged],
            max_s=self.shred_max_s,
            paired_s=round(now - first.since, 3),
        )
        # Power first: the two people are standing at the shredder waiting for it.
        return [PowerOn(), Feedback("granted"),
                Emit.of(started, wall, second.badge, second.person, snapshot=True)]

    def _end(self, why: str, now: float, wall: datetime, by: _Tap | None = None) -> list[Effect]:
        s = self._session
        if s is None:
            return []
        self._session = None
        fields: dict[str, Any] = dict(
            people=[s.first.person, s.second.person],
            badges=[s.first.badge, s.second.badge],
            started_at=s.at,
            ended_at=wall,
            duration_s=round(now - s.since, 3),
            ended_by=why,
            max_s=self.shred_max_s,
        )
        if by is not None:  # named only when a tap ended it
            fields.update(ended_by_badge=by.badge, ended_by_person=by.person)
        return [PowerOff(), Emit.of(ev.ShredEnded(**fields), wall, s.second.badge, s.second.person)]

    # --- extra inputs ---

    def input(self, name: str, active: bool, now: float, wall: datetime) -> list[Effect]:
        """The stop button (active = pressed) or the bin door sensor (active = open) changed."""
        late = self.tick(now, wall) if self._due(now) else []
        return late + self._input(name, active, now, wall)

    def _input(self, name: str, active: bool, now: float, wall: datetime) -> list[Effect]:
        if name == STOP_BUTTON:
            if active and self._session is not None:
                return self._end("stop_button", now, wall)
            return []
        if name == BIN:
            if active == self.bin_open:
                return []
            self.bin_open = active
            if not active:
                return [Emit.of(ev.BinClosed(), wall)]
            # No cutting while a hand may be in the bin: the session ends first.
            effects = self._end("bin_opened", now, wall)
            return effects + [Emit.of(ev.BinOpened(during_session=bool(effects)), wall)]
        _LOG.debug("input %s is not used by a shredder", name)
        return []

    # --- time ---

    def _due(self, now: float) -> bool:
        deadline = self.next_deadline()
        return deadline is not None and now >= deadline

    def tick(self, now: float, wall: datetime) -> list[Effect]:
        """Time passed: a pair window expires, a session reaches its maximum length."""
        effects: list[Effect] = []
        first = self._waiting
        if first is not None and now - first.since > self.pair_window_s:
            self._waiting = None
            effects += [Feedback("denied"), self._refused("window_expired", wall, first, None, None)]
        s = self._session
        if s is not None and now >= s.until:
            effects += self._end("max_length", now, wall)
        return effects

    def next_deadline(self) -> float | None:
        """When tick() next has something to do (monotonic seconds), if ever."""
        times = []
        if self._waiting is not None:
            times.append(self._waiting.since + self.pair_window_s + 1e-3)
        if self._session is not None:
            times.append(self._session.until)
        return min(times) if times else None


class ShredderPins(PinsSection, kw_only=True):
    """A two-person shredder cannot work without the relay in its power feed."""

    power_relay: Pin


class ShredderUnit(StationUnit, kw_only=True):
    """A two-person shredder's unit file: its power relay required."""

    KIND = "shredder"
    pins: ShredderPins

    def make_logic(self) -> ShredderLogic:
        t = self.timings
        return ShredderLogic(pair_window_s=t.pair_window_s, shred_max_s=t.shred_max_s,
                             repeat_s=self.reader.repeat_window_s)


UNIT = ShredderUnit
