"""Station logic: one module per station kind, pure state machines driven by the agent.

Every kind offers the same small interface (see ``StationLogic``); ``make_logic`` picks the
module for the unit's ``station.kind``. A new kind adds its module and one line in ``_KINDS``.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable, Protocol

from device.config import DeviceConfig
from device.stations.effects import Effect
from kagiban.protocol import PolicyEntry


class UnsupportedStation(Exception):
    """The unit's station kind has no logic in this version of the agent."""


class StationLogic(Protocol):
    """Inputs with their times in, effects out; no I/O."""

    door_open: bool

    def assume_door(self, is_open: bool, now: float, wall: datetime) -> None: ...

    def badge(self, badge: str, now: float, wall: datetime) -> list[Effect]: ...

    def door(self, is_open: bool, now: float, wall: datetime) -> list[Effect]: ...

    def tick(self, now: float, wall: datetime) -> list[Effect]: ...

    def next_deadline(self) -> float | None: ...


def _cabinet(cfg: DeviceConfig, decide: Callable[[str], PolicyEntry]) -> StationLogic:
    from device.stations.cabinet import CabinetLogic

    t = cfg.timings
    return CabinetLogic(unlock_s=t.unlock_s, held_open_s=t.held_open_s, decide=decide)


_KINDS: dict[str, Callable[[DeviceConfig, Callable[[str], PolicyEntry]], StationLogic]] = {
    "cabinet": _cabinet,
}


def make_logic(cfg: DeviceConfig, decide: Callable[[str], PolicyEntry]) -> StationLogic:
    """The logic for ``cfg.station.kind``; UnsupportedStation if this agent has none."""
    try:
        factory = _KINDS[cfg.station.kind]
    except KeyError:
        raise UnsupportedStation(f"station.kind {cfg.station.kind!r} is not supported yet") from None
    return factory(cfg, decide)
