"""Roll-call unit logic: badge taps in, ``rollcall.tap`` events and an LED/buzzer answer out.

A reader, a green and a red LED and a buzzer at the meeting room. It unlocks nothing: a tap
checks the person in for the roll-call session its signed policy has open (device.wire
RollCall, put there by the hub while a supervisor's session is open at this unit) and answers at
once:

- ``present``: the person is expected and the tap is within the check-in window (green, a beep);
- ``late``: expected, after the window's on-time part (green, two beeps);
- ``unexpected``: not on the session's list, or a badge that names nobody (red, three beeps);
- ``no_session``: no session open here (red, one long beep).

Every tap is recorded (``rollcall.tap``) through the outbox, so a session works with the hub
away; the hub decides what each tap counts as from its time, the unit's answer is only what the
person was shown. A badge the policy refuses as revoked, inactive, expired, not yet valid or
unknown names nobody here; one refused for lack of training still names its holder (a training
is exactly where such a person checks in).

Times: ``now`` is monotonic seconds, ``wall`` the aware wall-clock time of the tap.
"""
from __future__ import annotations

from datetime import datetime

from device.config import Pin, PinsSection
from device.stations.base import StationBase, StationUnit
from device.stations.checkin import check_in
from device.stations.effects import Effect
from device.stations.repeat import RepeatWindow
from device.wire import PolicyEntry, RollCall


class RollcallLogic(StationBase):
    """One roll-call unit: answers taps against the session its policy has open."""

    checks_in_itself = True

    def __init__(self, repeat_s: float = 0.0) -> None:
        self._session: RollCall | None = None
        self._repeats = RepeatWindow(repeat_s)

    def roll_call(self, session: RollCall | None) -> None:
        """The session the policy in force has open here (None: none)."""
        self._session = session

    def badge(self, badge: str, entry: PolicyEntry, now: float, wall: datetime) -> list[Effect]:
        """A tap: checked in against the open session, recorded, answered."""
        return self._repeats.tap(badge, now, lambda: check_in(self._session, badge, entry, wall))


class RollcallPins(PinsSection, kw_only=True):
    """A roll-call unit cannot answer without its green and red LEDs and its buzzer."""

    led_granted: Pin
    led_denied: Pin
    buzzer: Pin


class RollcallUnit(StationUnit, kw_only=True):
    """A roll-call unit's unit file: the two LEDs and the buzzer required (and a reader)."""

    KIND = "rollcall"
    pins: RollcallPins

    def make_logic(self) -> RollcallLogic:
        return RollcallLogic(repeat_s=self.reader.repeat_window_s)


UNIT = RollcallUnit
