"""Station logic: one module per station kind, pure state machines driven by the agent.

Every kind offers the same small interface (see ``StationLogic``), built on
:class:`device.stations.base.StationBase` (no-op defaults); ``make_logic`` picks the module for
the unit's ``station.kind``. A new kind adds its module and one line in ``_KINDS``. A logic is
handed each badge's policy decision with the tap; it never asks for it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Protocol, runtime_checkable

from device.config import DeviceConfig
from device.stations.effects import Effect, Work
from kagiban.protocol import PolicyEntry


class UnsupportedStation(Exception):
    """The unit's station kind has no logic in this version of the agent."""


@runtime_checkable
class StationLogic(Protocol):
    """Inputs with their times in, effects out; no I/O."""

    door_open: bool

    def assume_door(self, is_open: bool, now: float, wall: datetime) -> None: ...

    @property
    def print_server_up(self) -> bool | None: ...

    def badge(self, badge: str, entry: PolicyEntry, now: float, wall: datetime) -> list[Effect]: ...

    def door(self, is_open: bool, now: float, wall: datetime) -> list[Effect]: ...

    def tick(self, now: float, wall: datetime) -> list[Effect]: ...

    def next_deadline(self) -> float | None: ...

    def input(self, name: str, active: bool, now: float, wall: datetime) -> list[Effect]: ...

    def work_done(self, work: Work, result: Any, now: float, wall: datetime) -> list[Effect]: ...


def _cabinet(cfg: DeviceConfig) -> StationLogic:
    from device.stations.cabinet import CabinetLogic

    t = cfg.timings
    return CabinetLogic(unlock_s=t.unlock_s, held_open_s=t.held_open_s,
                        repeat_s=cfg.reader.repeat_window_s)


def _shredder(cfg: DeviceConfig) -> StationLogic:
    from device.stations.shredder import ShredderLogic

    t = cfg.timings
    return ShredderLogic(pair_window_s=t.pair_window_s, shred_max_s=t.shred_max_s,
                         repeat_s=cfg.reader.repeat_window_s)


def _door(cfg: DeviceConfig) -> StationLogic:
    from device.stations.door import DoorLogic

    t = cfg.timings
    # Without a reader nobody can badge in, so an opening is not by itself an intrusion.
    return DoorLogic(unlock_s=t.unlock_s, held_open_s=t.held_open_s,
                     has_reader=cfg.reader.type != "none", repeat_s=cfg.reader.repeat_window_s)


def _printer(cfg: DeviceConfig) -> StationLogic:
    from device.stations.printer import PrinterLogic

    t = cfg.timings
    return PrinterLogic(hold_max_s=t.hold_max_s, tray_alert_s=t.tray_alert_s,
                        check_s=cfg.printer.check_s, repeat_s=cfg.reader.repeat_window_s)


_KINDS: dict[str, Callable[[DeviceConfig], StationLogic]] = {
    "cabinet": _cabinet,
    "shredder": _shredder,
    "door": _door,
    "printer": _printer,
}


def make_logic(cfg: DeviceConfig) -> StationLogic:
    """The logic for ``cfg.station.kind``; UnsupportedStation if this agent has none."""
    try:
        factory = _KINDS[cfg.station.kind]
    except KeyError:
        raise UnsupportedStation(f"station.kind {cfg.station.kind!r} is not supported yet") from None
    return factory(cfg)
