"""Debouncing for door and tray contacts: pure logic, the time is passed in.

gpiozero's ``bounce_time`` is unreliable across pin backends (it does nothing on mock pins), so
the station debounces raw edges itself. Feed every raw edge to :meth:`Debouncer.raw`, then call
:meth:`Debouncer.poll` at (or after) the deadline it returned.
"""
from __future__ import annotations

import logging

_LOG = logging.getLogger(__name__)


class Debouncer:
    """Reports a level once it has stayed unchanged for ``stable_s`` seconds."""

    def __init__(self, stable_s: float, initial: bool | None = None) -> None:
        if stable_s < 0:
            raise ValueError("stable_s must not be negative")
        self._stable_s = float(stable_s)
        self._stable = initial
        self._raw = initial
        # When the raw level last changed; None until the first edge.
        self._changed_at: float | None = None

    @property
    def state(self) -> bool | None:
        """The last stable level (None if nothing is known yet)."""
        return self._stable

    @property
    def changed_at(self) -> float | None:
        """When the raw level last changed (the moment a stable change really happened)."""
        return self._changed_at

    @property
    def deadline(self) -> float | None:
        """When a pending change would become stable, or None if nothing is pending."""
        if self._changed_at is None or self._raw == self._stable:
            return None
        return self._changed_at + self._stable_s

    def raw(self, level: bool, now: float) -> float:
        """Record a raw edge at ``now``; returns the time at which to call :meth:`poll`."""
        level = bool(level)
        # A repeated report of the same level is not a new edge: it must not extend the wait.
        if level != self._raw or self._changed_at is None:
            self._raw = level
            self._changed_at = now
        return self._changed_at + self._stable_s

    def poll(self, now: float) -> bool | None:
        """The new stable level if the raw level has held for ``stable_s``, else None."""
        if self._changed_at is None or self._raw == self._stable:
            return None
        # Compared with the same sum raw() returned, so polling at that deadline succeeds.
        if now < self._changed_at + self._stable_s:
            return None
        self._stable = self._raw
        _LOG.debug("stable level %s after %.3f s", self._stable, now - self._changed_at)
        return self._stable
