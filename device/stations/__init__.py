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

    def input(self, name: str, active: bool, now: float, wall: datetime) -> list[Effect]:
        """An extra input changed (``stop_button``: pressed; ``bin``: open). Optional: a kind
        without extra inputs need not define it (see :func:`feed_input`)."""
        return []


def feed_input(logic: StationLogic, name: str, active: bool, now: float, wall: datetime) -> list[Effect]:
    """Hand an extra input to ``logic``; a logic without ``input`` ignores it."""
    handler = getattr(logic, "input", None)
    return handler(name, active, now, wall) if handler is not None else []


def _cabinet(cfg: DeviceConfig, decide: Callable[[str], PolicyEntry]) -> StationLogic:
    from device.stations.cabinet import CabinetLogic

    t = cfg.timings
    return CabinetLogic(unlock_s=t.unlock_s, held_open_s=t.held_open_s, decide=decide,
                        repeat_s=cfg.reader.repeat_window_s)


def _shredder(cfg: DeviceConfig, decide: Callable[[str], PolicyEntry]) -> StationLogic:
    from device.stations.shredder import ShredderLogic

    t = cfg.timings
    return ShredderLogic(pair_window_s=t.pair_window_s, shred_max_s=t.shred_max_s, decide=decide,
                         repeat_s=cfg.reader.repeat_window_s)


def _door(cfg: DeviceConfig, decide: Callable[[str], PolicyEntry]) -> StationLogic:
    from device.stations.door import DoorLogic

    t = cfg.timings
    # Without a reader nobody can badge in, so an opening is not by itself an intrusion.
    return DoorLogic(unlock_s=t.unlock_s, held_open_s=t.held_open_s, decide=decide,
                     has_reader=cfg.reader.type != "none", repeat_s=cfg.reader.repeat_window_s)


def _printer(cfg: DeviceConfig, decide: Callable[[str], PolicyEntry]) -> StationLogic:
    from device.stations.printer import PrinterLogic

    t = cfg.timings
    return PrinterLogic(decide=decide, hold_max_s=t.hold_max_s, tray_alert_s=t.tray_alert_s,
                        check_s=cfg.printer.check_s, repeat_s=cfg.reader.repeat_window_s)


_KINDS: dict[str, Callable[[DeviceConfig, Callable[[str], PolicyEntry]], StationLogic]] = {
    "cabinet": _cabinet,
    "shredder": _shredder,
    "door": _door,
    "printer": _printer,
}


def make_logic(cfg: DeviceConfig, decide: Callable[[str], PolicyEntry]) -> StationLogic:
    """The logic for ``cfg.station.kind``; UnsupportedStation if this agent has none."""
    try:
        factory = _KINDS[cfg.station.kind]
    except KeyError:
        raise UnsupportedStation(f"station.kind {cfg.station.kind!r} is not supported yet") from None
    return factory(cfg, decide)
