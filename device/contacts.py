"""The unit's contacts (the door's reed switch and the extra inputs), debounced one way.

Every contact, the door included, goes through the same path: raw edges in
(:meth:`Contacts.edge`), settled changes out, each carrying the time the contact really moved
(not the end of the debounce wait). With ``debounce_ms: 0`` an edge is settled at once.
Pure: the times are passed in (device.sensors.debounce).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from device.sensors.debounce import Debouncer

_LOG = logging.getLogger(__name__)

DOOR = "door"


@dataclass(frozen=True)
class Settled:
    """A contact's new stable level and when it moved."""

    name: str
    is_open: bool
    at: float


class Contacts:
    """Debouncers by contact name, and when the next one settles."""

    def __init__(self, stable_s: float) -> None:
        self._stable_s = stable_s
        self._debouncers: dict[str, Debouncer] = {}
        self._deadlines: dict[str, float] = {}

    def reset(self, levels: dict[str, bool]) -> None:
        """Start again from the levels found (at start); nothing is pending."""
        self._debouncers = {name: Debouncer(self._stable_s, initial=level) for name, level in levels.items()}
        self._deadlines.clear()

    def edge(self, name: str, is_open: bool, at: float) -> list[Settled]:
        """A raw edge; what settles at once (with no debounce wait) is returned."""
        deb = self._debouncers.get(name)
        if deb is None:
            _LOG.debug("edge of unknown contact %s ignored", name)
            return []
        self._deadlines[name] = deb.raw(is_open, at)
        if self._stable_s == 0:
            return self.due(at)
        return []

    def due(self, now: float) -> list[Settled]:
        """The contacts whose level has held long enough by ``now`` (the door first)."""
        out: list[Settled] = []
        for name in list(self._debouncers):
            deadline = self._deadlines.get(name)
            if deadline is None or now < deadline:
                continue
            del self._deadlines[name]
            deb = self._debouncers[name]
            moved_at = deb.changed_at
            level = deb.poll(now)
            if level is not None and moved_at is not None:
                out.append(Settled(name, level, moved_at))
        return out

    def next_deadline(self) -> float | None:
        """When a pending edge would settle, if any."""
        return min(self._deadlines.values()) if self._deadlines else None
