"""The base every station logic builds on: each input it does not use does nothing.

A logic overrides only what its station has (a shredder has no door, a printer no unlock
window), so every kind offers the whole :class:`device.stations.StationLogic` interface and the
agent hands every input to every logic the same way. The badge decision is an argument: the
agent asks the policy cache at the time of the tap and the logic only acts on the answer.
Pure: no pins, no clocks; times are passed in.

``StationUnit`` is the base of each kind's unit model (the unit file of that kind): a kind's
module (``device/stations/<kind>.py``) defines its unit model beside its logic, names it
``UNIT``, and builds its logic with ``make_logic``; device.unit_file finds it by the kind's name.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from device.config import DeviceConfig
from device.stations.effects import Effect, Work
from device.wire import PolicyEntry, RollCall, SiteAlarm
from kagiban.wire import SignalState


class StationBase:
    """No-op defaults for the whole station-logic interface."""

    # Whether the station's door is open (the heartbeat reports it); stations without a door: closed.
    door_open: bool = False
    # Whether the station follows its site's open critical alerts (the hub's retained SiteAlarm):
    # the agent subscribes to them only for a logic that says so.
    hears_site_alarm: ClassVar[bool] = False
    # Whether the logic takes roll-call taps itself (a roll-call unit); for any other station the
    # agent checks a tap in (device.stations.checkin) instead of its usual use while a roll call
    # is open there.
    checks_in_itself: ClassVar[bool] = False

    @property
    def signal(self) -> SignalState | None:
        """The lamp and buzzer as the logic last set them (the heartbeat reports it); None: no signal."""
        return None

    @property
    def print_server_up(self) -> bool | None:
        """Whether the print server answered last time (None: not known, or no print server)."""
        return None

    def assume_door(self, is_open: bool, now: float, wall: datetime) -> None:
        """The door state found at start (no door: nothing to assume)."""

    def badge(self, badge: str, entry: PolicyEntry, now: float, wall: datetime) -> list[Effect]:
        """A badge was tapped and the policy answered ``entry``."""
        return []

    def roll_call(self, session: RollCall | None) -> None:
        """The roll-call session the policy in force has open here (told before each badge)."""

    def door(self, is_open: bool, now: float, wall: datetime) -> list[Effect]:
        """The (debounced) door switch changed."""
        return []

    def input(self, name: str, active: bool, now: float, wall: datetime) -> list[Effect]:
        """An extra input changed (``stop_button``: pressed; ``bin``: open; ``tray``: paper)."""
        return []

    def work_done(self, work: Work, result: Any, now: float, wall: datetime) -> list[Effect]:
        """A slow request (device.stations.effects.Work) made earlier was answered."""
        return []

    def site_alarm(self, alarm: SiteAlarm, now: float, wall: datetime) -> list[Effect]:
        """The hub's state of the site's open critical alerts arrived (hears_site_alarm only)."""
        return []

    def tick(self, now: float, wall: datetime) -> list[Effect]:
        """Time passed."""
        return []

    def next_deadline(self) -> float | None:
        """When tick() next has something to do (monotonic seconds), if ever."""
        return None


class StationUnit(DeviceConfig, kw_only=True):
    """A unit file of one station kind: its required pins, and the logic it runs."""

    KIND: ClassVar[str] = ""

    def make_logic(self) -> StationBase:
        """The station's logic, built from this unit file."""
        raise NotImplementedError
