"""Station logic: one module per station kind, pure state machines driven by the agent.

Every kind offers the same small interface (see ``StationLogic``), built on
:class:`device.stations.base.StationBase` (no-op defaults); ``make_logic`` picks the module for
the unit's ``station.kind``. A new kind adds its module ``<kind>.py`` with its logic and its unit
model (``UNIT``, device.stations.base.StationUnit), nothing here: device.unit_file finds it by
the kind's name. A logic is handed each badge's policy decision with the tap; it never asks for it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from device.config import DeviceConfig
from device.stations.base import StationUnit
from device.stations.effects import Effect, Work
from device.wire import PolicyEntry, RollCall, SiteAlarm
from kagiban.wire import SignalState


class UnsupportedStation(Exception):
    """The unit's station kind has no logic in this version of the agent."""


@runtime_checkable
class StationLogic(Protocol):
    """Inputs with their times in, effects out; no I/O."""

    door_open: bool

    @property
    def hears_site_alarm(self) -> bool: ...

    @property
    def checks_in_itself(self) -> bool: ...

    @property
    def signal(self) -> SignalState | None: ...

    def site_alarm(self, alarm: SiteAlarm, now: float, wall: datetime) -> list[Effect]: ...

    def assume_door(self, is_open: bool, now: float, wall: datetime) -> None: ...

    @property
    def print_server_up(self) -> bool | None: ...

    def roll_call(self, session: RollCall | None) -> None: ...

    def badge(self, badge: str, entry: PolicyEntry, now: float, wall: datetime) -> list[Effect]: ...

    def door(self, is_open: bool, now: float, wall: datetime) -> list[Effect]: ...

    def tick(self, now: float, wall: datetime) -> list[Effect]: ...

    def next_deadline(self) -> float | None: ...

    def input(self, name: str, active: bool, now: float, wall: datetime) -> list[Effect]: ...

    def work_done(self, work: Work, result: Any, now: float, wall: datetime) -> list[Effect]: ...


def make_logic(cfg: DeviceConfig) -> StationLogic:
    """The logic ``cfg`` (a kind's unit model, as device.unit_file reads it) builds;
    UnsupportedStation if it is not one."""
    if not isinstance(cfg, StationUnit):
        raise UnsupportedStation(f"station.kind {cfg.station.kind!r} is not supported yet")
    return cfg.make_logic()
