"""How each peripheral is doing, as the heartbeat reports it (device.wire.PeripheralHealth).

Each adapter keeps one :class:`HealthCell` and sets it from its own thread; the agent's loop
reads them all for every heartbeat. A change of state is logged once (WARNING when something
stops working, INFO when it works again), not at every retry.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Callable

import msgspec

from device import wire
from kagiban.wire import MAX_HEALTH_DETAIL, PeripheralState, now_local

_LOG = logging.getLogger(__name__)


class HealthCell:
    """The state of one peripheral: ok, failed (there, but erring or hung) or absent (not
    found, unplugged), with an error code, a detail in English, and since when."""

    def __init__(self, name: str, *, clock: Callable[[], datetime] = now_local) -> None:
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._value = wire.PeripheralHealth(state="ok", since=clock())

    def ok(self) -> None:
        """The peripheral works (again)."""
        self._set("ok", None, None)

    def failed(self, error: str, detail: str = "") -> None:
        """It is there but does not work: ``error`` is a code (e.g. ``capture_timeout``)."""
        self._set("failed", error, detail)

    def absent(self, error: str, detail: str = "") -> None:
        """It cannot be found (not plugged in, not detected): ``error`` is a code."""
        self._set("absent", error, detail)

    def get(self) -> wire.PeripheralHealth:
        """The current state (an immutable message)."""
        with self._lock:
            return self._value

    @property
    def is_ok(self) -> bool:
        return self.get().state == "ok"

    def _set(self, state: PeripheralState, error: str | None, detail: str | None) -> None:
        detail = (detail or "")[:MAX_HEALTH_DETAIL] or None
        with self._lock:
            old = self._value
            if old.state == state and old.error == error:
                if old.detail != detail:
                    self._value = msgspec.structs.replace(old, detail=detail)
                return
            self._value = wire.PeripheralHealth(state=state, error=error, detail=detail, since=self._clock())
        if state == "ok":
            _LOG.info("%s works again (was %s: %s)", self.name, old.state, old.error)
        else:
            _LOG.warning("%s %s: %s (%s)", self.name, state, error, detail or "no detail")
