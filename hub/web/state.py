"""The hub's state as the web views see it (``state()``), kept in ``app.extensions["kagiban"]``.

A leaf: the views import it, and the app factory (hub.web.app) that imports the views puts the
state there, so no view imports the factory.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from hub.alerting.sinks import Sink
from hub.config import HubConfig
from hub.ledgers.base import staff_names
from hub.live import LiveBus
from hub.web.metrics import Stats

_LOG = logging.getLogger(__name__)

NAMES_TTL_S = 30.0


@dataclass
class WebState:
    """What the views need from the hub, kept in ``app.extensions["kagiban"]``."""

    engine: Engine
    cfg: HubConfig
    bus: LiveBus
    alerts: Any  # hub.alerting.alerts.AlertCenter, or None: then nobody can acknowledge
    stats: Stats | None
    registry: CollectorRegistry
    # Where a near-miss digest sent by hand goes (hub.nearmiss.digest.NotifierSinks in the hub;
    # empty: no supervisor target, nothing can be sent).
    digest_sinks: list[Sink] = field(default_factory=list)
    shutdown: threading.Event = field(default_factory=threading.Event)
    max_streams: int = 12
    _streams: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _names: dict[str, str] = field(default_factory=dict)
    _names_at: float = -1e9

    def names(self) -> dict[str, str]:
        """Person id -> name from the published staff policies, re-read at most every 30 s."""
        now = time.monotonic()
        if now - self._names_at > NAMES_TTL_S:
            try:
                self._names = staff_names(self.engine)
            except Exception:  # a name lookup must never take the page down
                _LOG.exception("reading staff names failed")
            self._names_at = now
        return self._names

    def open_stream(self) -> bool:
        """Count a live stream in; False if too many are open (each holds a server thread)."""
        with self._lock:
            if self._streams >= self.max_streams:
                return False
            self._streams += 1
            return True

    def close_stream(self) -> None:
        with self._lock:
            self._streams -= 1

    @property
    def streams(self) -> int:
        with self._lock:
            return self._streams


def state() -> WebState:
    """The hub state of the current app."""
    return current_app.extensions["kagiban"]
